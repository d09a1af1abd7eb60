// MathJax 3 (the script itself is fetched by docs/hooks.py, so math renders offline).
// Guide pages: pymdownx.arithmatex wraps math in class "arithmatex" with \( \) and \[ \] delimiters, and
// only those elements are typeset. Tutorial notebooks (mkdocs-jupyter): $ and $$ in their markdown cells.
(function () {
  var notebook = document.querySelector(".jp-Notebook, .jupyter-wrapper") !== null;
  window.MathJax = {
    tex: {
      inlineMath: notebook ? [["$", "$"], ["\\(", "\\)"]] : [["\\(", "\\)"]],
      displayMath: notebook ? [["$$", "$$"], ["\\[", "\\]"]] : [["\\[", "\\]"]],
      processEscapes: true,
      processEnvironments: true,
    },
    options: notebook ? {} : {ignoreHtmlClass: ".*|", processHtmlClass: "arithmatex"},
    loader: {load: []},
  };
})();
