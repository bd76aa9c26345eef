"""Real short trainings on the sample TFRecords, stopped and run again: a rerun resumes from
the last checkpoint (after SIGTERM, after Snakemake deleted the final one) to the bytes of
an uninterrupted run, whatever the CPU's instruction set and threads; a resume with other
data or recipe is refused."""

import signal
import subprocess
import sys
import time

import pytest

from conftest import REPO, SHORT, train
from test_training import AVX2_CPU, HAS_AVX512, checkpoint_digests, content_digest
from vww.train.checkpoints import checkpoint_step


def test_rerun_resumes_from_the_last_checkpoint(sample_records, tmp_path):
    records, _ = sample_records
    train(records, tmp_path, 20)
    log = train(records, tmp_path, 40).stderr
    assert "resuming from step 20" in log
    assert "step 30/40" in log and "step 10/40" not in log
    assert checkpoint_step(str(tmp_path / "model.ckpt-40")) == 40


def test_sigterm_checkpoints_and_the_rerun_continues(sample_records, tmp_path):
    records, _ = sample_records
    cmd = [sys.executable, str(REPO / "scripts/train.py"), "--records", *map(str, records["train"]),
           "--num-train-records", "160", "--train-dir", str(tmp_path), "--steps", "100000",
           *SHORT, "--log", str(tmp_path / "train.log")]
    process = subprocess.Popen(cmd, stderr=subprocess.PIPE, text=True)
    log = tmp_path / "train.log"
    deadline = time.monotonic() + 120
    while not (log.exists() and "step 20/" in log.read_text()):
        assert time.monotonic() < deadline and process.poll() is None
        time.sleep(0.2)
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=60)
    assert process.returncode != 0 and "stopped by SIGTERM" in stderr
    saved = int(stderr.rsplit("model.ckpt-", 1)[1].split()[0])
    assert saved >= 20
    log = train(records, tmp_path, saved + 10).stderr
    assert f"resuming from step {saved}" in log


def test_training_bytes_depend_on_neither_cpu_nor_threads_nor_interruption(sample_records,
                                                                         tmp_path):
    """12 steps (batch 32, 160 records: the run crosses two epochs) give one checkpoint
    whatever the instruction set the CPU offers, the threads (16 on these 2 cores), and
    after a run stopped at step 7 (mid-epoch) and resumed."""
    records, _ = sample_records

    def final(name, *extra, env=None):
        train(records, tmp_path / name, 12, "--deterministic", *extra, env=env)
        return checkpoint_digests(tmp_path / name, 12)

    reference = final("reference", "--threads", "2")
    assert final("avx2_cpu", "--threads", "1", env=AVX2_CPU) == reference
    assert final("16_threads", "--threads", "16") == reference
    train(records, tmp_path / "resumed", 7, "--deterministic")
    assert final("resumed") == reference


@pytest.mark.skipif(not HAS_AVX512, reason="the CPU has no AVX-512: both runs would be AVX2")
def test_native_arithmetic_differs_by_instruction_set(sample_records, tmp_path):
    """Why the caps exist (and that the test above can fail): with TensorFlow's own choice
    of instructions, an AVX2 CPU and this one train different bytes within 5 steps."""
    records, _ = sample_records
    digests = []
    for name, env in (("avx512", {}), ("avx2", AVX2_CPU)):
        train(records, tmp_path / name, 5, "--deterministic",
              env={**env, "VWW_ARITHMETIC": "native"})
        digests.append(checkpoint_digests(tmp_path / name, 5))
    assert digests[0] != digests[1]


def test_a_resume_with_other_data_or_recipe_is_refused(sample_records, tmp_path):
    records, _ = sample_records
    train_dir = tmp_path / "train"
    train(records, train_dir, 5)
    advice = (f"delete {train_dir} to train afresh, or set the config back to what made it "
              "(models.<name>.* keys, the dataset keys)")

    recipe = train(records, train_dir, 10, "--learning-rate", "0.01", check=False)
    assert recipe.returncode == 1
    assert recipe.stderr.splitlines()[-1] == (
        f"error: {train_dir}/model.ckpt-5: made with other data or recipe "
        f"(learning_rate: 0.045 -> 0.01): {advice}")

    # The same shard names with other contents: another data source's records.
    other = tmp_path / "other"
    other.mkdir()
    for path in records["train"]:
        (other / path.name).write_bytes(path.read_bytes())
    (other / records["train"][1].name).write_bytes(records["val"][0].read_bytes())
    data = train({"train": sorted(other.iterdir())}, train_dir, 10, check=False)
    assert data.returncode == 1
    old, new = (f"2 shards from train.record-00000-of-00002 (content {digest[:12]})"
                for digest in (content_digest(records["train"]),
                               content_digest(sorted(other.iterdir()))))
    assert data.stderr.splitlines()[-1] == (
        f"error: {train_dir}/model.ckpt-5: made with other data or recipe "
        f"(train records: {old} -> {new}): {advice}")

    # What a resume may change: the run length, and caching.
    assert "resuming from step 5" in train(records, train_dir, 10, "--cache-images", "true").stderr


def test_a_rerun_resumes_when_snakemake_deleted_the_last_checkpoint(sample_records, tmp_path):
    """Snakemake deletes a rerun job's outputs (the final checkpoint); the earlier ones,
    which TF's `checkpoint` file no longer leads to, are resumed from."""
    records, _ = sample_records
    train(records, tmp_path, 6, "--checkpoint-interval-s", 0)
    for path in tmp_path.glob("model.ckpt-6.*"):
        path.unlink()
    log = train(records, tmp_path, 6, "--checkpoint-interval-s", 0).stderr
    assert "resuming from step 5" in log
    assert checkpoint_step(str(tmp_path / "model.ckpt-6")) == 6
