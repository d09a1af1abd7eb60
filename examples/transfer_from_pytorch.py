"""Transfer from elsewhere: a CNN trained in PyTorch, imported, given a new head and fine-tuned in scratchnn.

    pip install "scratchnn[torch]"
    python examples/transfer_from_pytorch.py --data-dir /path/to/mnist    # about 12 s on one core
    python examples/transfer_from_pytorch.py --quick                        # seconds (smoke test)

1. PyTorch trains a small CNN on MNIST digits 0-4.
2. ``scratchnn.interop.from_torch`` turns it into a scratchnn model; both predict the same.
3. scratchnn drops its dense layers, puts a new head for digits 5-9 on the frozen convolutional
   base, trains the head on 50 labelled images per digit, then fine-tunes everything at a 10x
   smaller learning rate. Measured (Dec 5, full budget): the imported network predicts as PyTorch
   does on 100% of 1,000 test digits (99.0% accurate on 0-4); new head 95.6%, fine-tuned 95.7% on
   the 4,861 test digits 5-9.
Without MNIST files (or with --quick and no files) it uses random images, which shows the mechanics only.
"""
import argparse

import numpy as np
import torch
from torch import nn

import scratchnn as snn
from scratchnn import interop
from scratchnn.layers import Dense
from scratchnn.optimizers import Adam
from scratchnn.transfer import new_head_model, unfreeze

parser = argparse.ArgumentParser()
parser.add_argument("--data-dir", help="folder holding the MNIST files (else $SCRATCHNN_DATA_DIR or the cache)")
parser.add_argument("--quick", action="store_true", help="small budgets: a smoke test, not a result")
args = parser.parse_args()
torch.manual_seed(0)
snn.set_seed(0)
rng = np.random.default_rng(0)


def mnist():
    from scratchnn.datasets import DatasetNotFoundError, load_mnist, scale
    try:
        (X, y), (Xt, yt) = load_mnist(args.data_dir, download=not args.quick, progress=False)
    except DatasetNotFoundError:
        if not args.quick:
            raise
        print("no MNIST files here: random images (the mechanics only)")
        X, Xt = rng.integers(0, 256, (3000, 28, 28)), rng.integers(0, 256, (1000, 28, 28))
        y, yt = rng.integers(0, 10, 3000), rng.integers(0, 10, 1000)
    return scale(X)[:, None], y, scale(Xt)[:, None], yt


X, y, Xt, yt = mnist()
n_source, epochs = (2000, 1) if args.quick else (15000, 2)

# 1. PyTorch: a CNN for digits 0-4
net = nn.Sequential(nn.Conv2d(1, 16, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Conv2d(16, 32, 3, padding=1), nn.ReLU(), nn.MaxPool2d(2),
                    nn.Flatten(), nn.Linear(32 * 7 * 7, 64), nn.ReLU(), nn.Linear(64, 5))
src = np.flatnonzero(y < 5)[:n_source]
opt = torch.optim.Adam(net.parameters(), lr=1e-3)
for epoch in range(epochs):
    for idx in np.array_split(rng.permutation(src), max(1, len(src) // 64)):
        opt.zero_grad()
        nn.functional.cross_entropy(net(torch.from_numpy(X[idx])), torch.from_numpy(y[idx])).backward()
        opt.step()
net.eval()

# 2. into scratchnn: the same predictions
base = interop.from_torch(net, input_shape=(1, 28, 28))
probe = np.flatnonzero(yt < 5)[:1000]
ours = base.predict_classes(Xt[probe])
with torch.no_grad():
    same = (net(torch.from_numpy(Xt[probe])).argmax(1).numpy() == ours).mean()
print(f"imported from PyTorch: {len(base.layers)} layers, the same prediction on {same:.1%} of 1,000 test digits 0-4; "
      f"accuracy {(ours == yt[probe]).mean():.4f}")

# 3. a new head for digits 5-9 on the frozen base, then fine-tuning
few = np.concatenate([rng.choice(np.flatnonzero(y == d), 50, replace=False) for d in range(5, 10)])
test = np.flatnonzero(yt >= 5)[: 1000 if args.quick else None]
model = new_head_model(base, [Dense(5)], n_drop=3)  # keep the convolutional features: drop Linear-ReLU-Linear
model.compile(optimizer=Adam(1e-3), loss="softmax_cross_entropy")
model.fit(X[few], y[few] - 5, epochs=10 if args.quick else 40, batch_size=32, verbose=0, seed=0)
head = model.evaluate(Xt[test], yt[test] - 5)["accuracy"]
print(f"new head on the frozen PyTorch base, 250 images of digits 5-9: {head:.4f}")
unfreeze(model)
model.compile(optimizer=Adam(1e-4), loss="softmax_cross_entropy")
model.fit(X[few], y[few] - 5, epochs=5 if args.quick else 20, batch_size=32, verbose=0, seed=0)
print(f"fine-tuned in scratchnn at a 10x smaller learning rate: {model.evaluate(Xt[test], yt[test] - 5)['accuracy']:.4f}")
