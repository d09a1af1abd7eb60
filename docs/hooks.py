"""MkDocs hook: make sure the MathJax script the site serves is present before a build.

The site must render math without reaching a CDN (CI machines and many classrooms are offline
except for package registries), so MathJax's self-contained SVG build is fetched once from the
npm registry (``npm pack mathjax@3.2.2``) into ``docs/assets/mathjax/`` (ignored by git).
"""
import os
import shutil
import subprocess
import tarfile
import tempfile

VERSION = "3.2.2"
TARGET = os.path.join(os.path.dirname(__file__), "assets", "mathjax", "tex-svg-full.js")


def fetch_mathjax(target=TARGET):
    if os.path.exists(target):
        return target
    npm = shutil.which("npm")
    if npm is None:
        raise SystemExit(f"docs: MathJax is missing ({target}) and npm is not installed to fetch it; "
                         f"install Node.js/npm, or copy es5/tex-svg-full.js of mathjax@{VERSION} there")
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([npm, "pack", f"mathjax@{VERSION}", "--silent"], cwd=tmp, check=True,
                       stdout=subprocess.DEVNULL)
        with tarfile.open(os.path.join(tmp, f"mathjax-{VERSION}.tgz")) as tar:
            member = tar.getmember("package/es5/tex-svg-full.js")
            data = tar.extractfile(member).read()
    os.makedirs(os.path.dirname(target), exist_ok=True)
    partial = target + ".part"
    with open(partial, "wb") as f:
        f.write(data)
    os.replace(partial, target)
    return target


def on_pre_build(config, **kwargs):
    fetch_mathjax()
