"""model.pt is read only when its bytes are the ones run.json recorded: flipped, truncated, swapped or missing weights
are refused naming the file, never evaluated."""

import hashlib
import io

import pytest
import torch

from eqscale.cells import Cell
from eqscale.records import RecordError, RunRecord, read_run, write_record
from eqscale.training.evaluate import load_weights


@pytest.fixture
def cell_dir(tmp_path):
    cell = Cell("gatr", "xxs", 1e12, 1.0, False, 0)
    directory = tmp_path / cell.dir
    directory.mkdir(parents=True)
    buffer = io.BytesIO()
    torch.save({"w": torch.arange(1000, dtype=torch.float32)}, buffer)
    (directory / "model.pt").write_bytes(buffer.getvalue())
    write_record(RunRecord(cell=cell, steps=10, batch_size=2, lr=1e-3, params=1000, total_flops=1e12,
                           flops_per_step_nominal=1e11, train_tokens=100, num_train_trajectories=5,
                           num_train_samples=50, final_train_loss=0.1, wall_time_s=1.0, device="cpu",
                           model_sha256=hashlib.sha256(buffer.getvalue()).hexdigest(), versions={}, config={}),
                 directory)
    return directory


def test_the_recorded_weights_load(cell_dir):
    state = load_weights(cell_dir, read_run(cell_dir), torch.device("cpu"))
    assert torch.equal(state["w"], torch.arange(1000, dtype=torch.float32))


@pytest.mark.parametrize("damage, message", [
    ("flip a mantissa bit", "does not match the sha256 run.json records"),
    ("truncate", "does not match the sha256 run.json records"),
    ("another run's weights", "does not match the sha256 run.json records"),
    ("delete", "model.pt not found: train the cell first"),
])
def test_damaged_weights_are_refused_by_name(cell_dir, damage, message):
    path = cell_dir / "model.pt"
    blob = bytearray(path.read_bytes())
    if damage == "flip a mantissa bit":
        blob[-200] ^= 0x01  # inside the tensor data: torch.load alone would read a slightly different number
        path.write_bytes(bytes(blob))
    elif damage == "truncate":
        path.write_bytes(bytes(blob[: len(blob) // 2]))
    elif damage == "another run's weights":
        buffer = io.BytesIO()
        torch.save({"w": torch.zeros(1000)}, buffer)
        path.write_bytes(buffer.getvalue())
    else:
        path.unlink()
    with pytest.raises(RecordError, match=message) as info:
        load_weights(cell_dir, read_run(cell_dir), torch.device("cpu"))
    assert str(path) in str(info.value)
