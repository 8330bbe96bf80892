"""Resume a stream from its checkpoint in a fresh Python process (shared by the stream tests)."""
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[2]


def resume_in_fresh_process(tmp_path, checkpoint: dict, load_model: str, x: np.ndarray, observation: str,
                            steps: range) -> torch.Tensor:
    """In a new process: run `load_model` (code that binds `model`), open `model.stream()`, load `checkpoint`,
    then feed `observation` (an expression in the array `x` and the step `t`) for every t in `steps`.
    Returns the stacked outputs."""
    torch.save(checkpoint, tmp_path / "stream.pt")
    np.save(tmp_path / "x.npy", x)
    script = "\n".join([
        "import numpy as np, torch",
        textwrap.dedent(load_model),
        f"x = np.load({str(tmp_path / 'x.npy')!r})",
        "stream = model.stream()",
        f"stream.load_state_dict(torch.load({str(tmp_path / 'stream.pt')!r}, weights_only=True))",
        f"out = torch.stack([stream.update({observation}) for t in range({steps.start}, {steps.stop})])",
        f"torch.save(out, {str(tmp_path / 'out.pt')!r})",
    ])
    subprocess.run([sys.executable, "-c", script], check=True, cwd=str(ROOT))
    return torch.load(tmp_path / "out.pt", weights_only=True)
