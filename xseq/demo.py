"""The main job until the forecasting workflow lands: a short, real end-to-end run.

Trains a small xLSTM encoder (layout "msm") with Lightning to forecast the monthly Mauna Loa CO2
concentration one month ahead (statsmodels ships the data, so this runs offline), and prints the test
error beside two naive baselines. The model reads the monthly changes and predicts the next change; at test
time it runs causally over the whole history in one parallel call."""
from __future__ import annotations

import argparse
import time
from pathlib import Path

import lightning as L
import numpy as np
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from .nn import XLSTMConfig, XLSTMEncoder


class NextStepModel(L.LightningModule):
    def __init__(self, d_model: int = 32, layout: str = "msm", lr: float = 3e-3):
        super().__init__()
        self.save_hyperparameters()
        self.inp = nn.Linear(1, d_model)
        self.encoder = XLSTMEncoder(XLSTMConfig(d_model=d_model, layout=layout))
        self.out = nn.Linear(d_model, 1)

    def forward(self, x):  # x: (B, T) -> prediction of x_{t+1} at every t: (B, T)
        y, _ = self.encoder(self.inp(x.unsqueeze(-1)))
        return self.out(y).squeeze(-1)

    def training_step(self, batch, _):
        (x,) = batch
        loss = nn.functional.mse_loss(self(x[:, :-1]), x[:, 1:])
        self.log("train_mse", loss, prog_bar=True)
        return loss

    def configure_optimizers(self):
        return torch.optim.AdamW(self.parameters(), lr=self.hparams.lr, weight_decay=0.01)


def load_co2() -> np.ndarray:
    import statsmodels.api as sm

    weekly = sm.datasets.co2.load_pandas().data["co2"]
    monthly = weekly.resample("MS").mean()
    missing = int(monthly.isna().sum())
    if missing:
        print(f"co2: {missing} months without any weekly reading, filled by linear interpolation")
        monthly = monthly.interpolate()
    return monthly.to_numpy(dtype=np.float64)


def main(argv=None) -> dict:
    p = argparse.ArgumentParser(prog="xseq demo", description=__doc__)
    p.add_argument("--epochs", type=int, default=60)
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--threads", type=int, default=1, help="torch threads (one is fastest for small models)")
    p.add_argument("--plot", default="outputs/demo_co2.png")
    args = p.parse_args(argv)
    torch.set_num_threads(args.threads)
    L.seed_everything(args.seed, verbose=False)

    y = load_co2()
    diff = np.diff(y)
    n_train = int(0.8 * len(diff))
    mu, sd = diff[:n_train].mean(), diff[:n_train].std()
    z = torch.tensor((diff - mu) / sd, dtype=torch.float32)
    window = 97
    starts = range(0, n_train - window + 1, 4)
    train = torch.stack([z[s:s + window] for s in starts])
    model = NextStepModel()
    trainer = L.Trainer(max_epochs=args.epochs, logger=False, enable_checkpointing=False,
                        enable_model_summary=False, accelerator="cpu")
    t0 = time.perf_counter()
    trainer.fit(model, DataLoader(TensorDataset(train), batch_size=16, shuffle=True))
    train_s = time.perf_counter() - t0

    model.eval()
    with torch.no_grad():
        pred_z = model(z[None, :-1])[0].numpy()  # causal: position t sees changes up to t only
    pred_diff = pred_z * sd + mu
    # forecast of level y[t+2] made at time t+1 from y[t+1] + predicted change diff[t+1]
    targets = np.arange(n_train + 1, len(y))  # test months
    ours = y[targets - 1] + pred_diff[targets - 2]
    naive = y[targets - 1]
    seasonal = y[targets - 1] + (y[targets - 12] - y[targets - 13])
    rmse = {name: float(np.sqrt(np.mean((f - y[targets]) ** 2)))
            for name, f in (("xLSTM", ours), ("naive (last value)", naive), ("seasonal naive (last year's change)", seasonal))}
    print(f"\nMauna Loa CO2, monthly, one month ahead; test = last {len(targets)} months; "
          f"trained {args.epochs} epochs in {train_s:.1f} s on {torch.get_num_threads()} thread(s)")
    for name, value in rmse.items():
        print(f"  test RMSE {name:<38s} {value:.3f} ppm")
    _plot(args.plot, y, targets, ours)
    return rmse


def _plot(path: str, y: np.ndarray, targets: np.ndarray, forecast: np.ndarray) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    Path(path).parent.mkdir(parents=True, exist_ok=True)
    fig, ax = plt.subplots(figsize=(9, 3.5))
    ax.plot(np.arange(len(y)), y, color="0.4", lw=1, label="observed")
    ax.plot(targets, forecast, color="C3", lw=1, label="xLSTM one month ahead")
    ax.axvline(targets[0], color="0.7", ls="--", lw=1)
    ax.set_xlabel("month since 1958-03")
    ax.set_ylabel("CO2 (ppm)")
    ax.legend(loc="upper left")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    plt.close(fig)
    print(f"  plot: {path}")


if __name__ == "__main__":
    main()
