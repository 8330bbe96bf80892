"""`xseq classify` on a real archive set: prints accuracy beside the ridge baseline, writes the PNG."""
from xseq.cli import main


def test_classify_cli(data_dir, tmp_path, capsys):
    d = data_dir / "ucr" / "ItalyPowerDemand"
    rc = main(["classify", "--train", str(d / "ItalyPowerDemand_TRAIN.ts"), "--test",
               str(d / "ItalyPowerDemand_TEST.ts"), "--epochs", "5", "--d-model", "16", "--out", str(tmp_path)])
    out = capsys.readouterr().out
    assert rc == 0
    assert "test accuracy: xLSTM" in out and "ridge on raw values" in out
    acc = float(out.split("test accuracy: xLSTM ")[1].split()[0])
    assert 0.5 < acc <= 1.0
    png = tmp_path / "confusion_matrix.png"
    assert png.exists() and png.read_bytes()[:4] == b"\x89PNG"
