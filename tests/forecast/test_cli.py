import pandas as pd

from xseq.forecast import cli


def test_quickstart_runs_and_writes_outputs(tmp_path):
    out, plot = tmp_path / "forecast.csv", tmp_path / "forecast.png"  # --out is the folder for both
    result = cli.main(["--epochs", "1", "--out", str(tmp_path)])
    assert set(result) == {"xLSTM", "linear (closed form)", "seasonal naive"}
    assert plot.stat().st_size > 10_000
    forecast = pd.read_csv(out, index_col=0, parse_dates=True)
    assert len(forecast) == 12 and list(forecast.columns) == ["co2"]


def test_user_csv(tmp_path):
    y = cli.co2_monthly().rename_axis("date")
    y["detrended"] = y["co2"] - y["co2"].rolling(12, min_periods=1).mean()
    path = tmp_path / "series.csv"
    y.to_csv(path)
    out = tmp_path / "forecast.csv"
    cli.main(["--data", str(path), "--target", "co2", "detrended", "--horizon", "6", "--season", "12",
              "--epochs", "1", "--out", str(tmp_path)])
    assert list(pd.read_csv(out, index_col=0).columns) == ["co2", "detrended"]
