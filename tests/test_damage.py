"""Damaged files: each reader names the file, the record or byte and the remedy in one line;
`verify_results.py` finds every damaged artifact; training resumes past a damaged
checkpoint. Real shards, a real trained checkpoint and a real .tflite, damaged on disk."""

import hashlib
import json
import shutil
import struct

import pytest

from conftest import SHORT_MODEL, run, sha256, train
from plot_report import read_events, scalar_series
from vww.base.cli import RUN_ENV, InputError
from vww.base.files import RESULTS_ENV, write_json, write_text
from vww.data.records import DamagedShardError
from vww.model.dataset import eval_examples
from vww.model.recipe import RECIPE

# TFRecord framing: 8-byte length, 4-byte crc of it, the data, 4-byte crc of the data.
HEADER_BYTES, FOOTER_BYTES = 12, 4


def record_starts(path):
    """The byte offset at which each record of a TFRecord file starts, read from the
    framing by hand (not by TensorFlow)."""
    data, starts, at = path.read_bytes(), [], 0
    while at < len(data):
        starts.append(at)
        (length,) = struct.unpack("<Q", data[at:at + 8])
        at += HEADER_BYTES + length + FOOTER_BYTES
    return starts


def flip_byte(path, offset):
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x01
    path.write_bytes(bytes(data))


@pytest.fixture
def val_shard_copy(sample_records, tmp_path):
    """A copy of the sample's val shard (same name) and its records' start offsets."""
    records, _ = sample_records
    copy = tmp_path / records["val"][0].name
    shutil.copy(records["val"][0], copy)
    return copy, record_starts(copy)


def damaged_copy(shard, starts, how):
    """Damage record 7 of `shard`: a flipped byte in its data ("flip") or the file cut in
    its middle ("truncate"). Returns the offset the reader names: the record's data for a
    data checksum that does not match, the record's start for a cut."""
    start, end = starts[7], starts[8]
    if how == "flip":
        flip_byte(shard, start + HEADER_BYTES + 100)
        return start + HEADER_BYTES
    with open(shard, "r+b") as f:
        f.truncate((start + end) // 2)
    return start


@pytest.mark.parametrize("how, words", [("flip", "corrupted record"),
                                        ("truncate", "truncated record")])
def test_a_damaged_record_is_named_by_file_record_and_offset(val_shard_copy, how, words):
    shard, starts = val_shard_copy
    offset = damaged_copy(shard, starts, how)
    settings = {key: default for key, (default, _) in RECIPE.items()}
    with pytest.raises(DamagedShardError) as error:
        list(eval_examples([str(shard)], settings))
    message = str(error.value)
    assert message.startswith(f"{shard}: damaged at record 7 ({words} at {offset}"), message
    assert message.endswith("rebuild it (the same bytes): snakemake --cores all --config "
                            "repair=true") and "\n" not in message


def one_line_error(result):
    """The CLI's last stderr line, asserting it failed with one `error:` line."""
    assert result.returncode == 1, result.stderr[-2000:]
    errors = [line for line in result.stderr.splitlines() if line.startswith("error: ")]
    assert len(errors) == 1 and result.stderr.rstrip().endswith(errors[0]), result.stderr
    return errors[0]


def test_cli_readers_name_a_damaged_shard(val_shard_copy, exported, sample_records):
    shard, starts = val_shard_copy
    offset = damaged_copy(shard, starts, "flip")
    out, checkpoint = exported
    expected = f"error: {shard}: damaged at record 7 (corrupted record at {offset}"
    for script, args in (
            ("evaluate.py", ["--checkpoint", checkpoint, *SHORT_MODEL]),
            ("evaluate_tflite.py", ["--tflite", out / "model.tflite"]),
            ("check_micro.py", ["--tflite", out / "model.tflite"])):
        result = run(script, *args, "--records", shard, "--output", shard.parent / "out.json",
                     check=False)
        assert one_line_error(result).startswith(expected), script


def test_training_checks_its_shards_before_the_first_step(sample_records, tmp_path):
    """Against the dataset summary's sha256: a damaged shard stops it before any step, named;
    without a summary the damaged record is named when it is read."""
    records, counts = sample_records
    shards = [tmp_path / path.name for path in records["train"]]
    for path, copy in zip(records["train"], shards):
        shutil.copy(path, copy)
    summary = tmp_path / "summary.json"
    summary.write_text(json.dumps({"train": {
        "records": counts["train"], "decoded_bytes": 1,
        "shard_sha256": {path.name: sha256(path) for path in shards}}}))
    data = record_starts(shards[1])[3] + HEADER_BYTES
    flip_byte(shards[1], data + 50)

    result = run("train.py", "--records", *shards, "--dataset-summary", summary,
                 "--train-dir", tmp_path / "train", "--steps", 5, check=False)
    assert one_line_error(result) == (
        f"error: {shards[1]}: its sha256 differs from the one {summary} records "
        "(damaged since it was written): rebuild it (the same bytes): snakemake --cores all "
        "--config repair=true")
    assert "step 1/" not in result.stderr

    result = train({"train": shards}, tmp_path / "unchecked", 20, check=False)
    assert one_line_error(result).startswith(
        f"error: {shards[1]}: damaged at record 3 (corrupted record at {data})")


def test_a_damaged_checkpoint_is_named_with_its_remedy(exported, tmp_path):
    out, checkpoint = exported
    copy = tmp_path / "model.ckpt-200"
    for suffix in ("index", "data-00000-of-00001"):
        shutil.copy(f"{checkpoint}.{suffix}", f"{copy}.{suffix}")
    data = tmp_path / "model.ckpt-200.data-00000-of-00001"
    flip_byte(data, data.stat().st_size // 2)
    result = run("freeze_graph.py", "--graph", out / "graph.pb", "--checkpoint", copy,
                 "--output", tmp_path / "frozen.pb", check=False)
    line = one_line_error(result)
    assert line.startswith(f"error: {data}: damaged checkpoint (") and "Checksum" in line
    assert line.endswith("retrain it from the newest intact checkpoint (the same bytes): "
                         "snakemake --cores all --config repair=true")
    assert not (tmp_path / "frozen.pb").exists()
    # As a job of a workflow run (which exports how it was started): that run's command.
    run_env = {RUN_ENV: json.dumps({"snakefile": None, "configfiles": ["my config.yaml"],
                                    "config": {"download": False, "dataset": {"val_shards": 2}}})}
    result = run("freeze_graph.py", "--graph", out / "graph.pb", "--checkpoint", copy,
                 "--output", tmp_path / "frozen.pb", check=False, env=run_env)
    assert one_line_error(result).endswith(
        "snakemake --cores all --configfile 'my config.yaml' --config download=false "
        "'dataset={\"val_shards\": 2}' repair=true")


def test_training_resumes_past_a_damaged_newest_checkpoint(sample_records, tmp_path):
    """Checkpoints at every step; the newest (the final one) damaged: the rerun moves it
    aside, saying so, resumes from the one before and ends with the clean run's bytes."""
    records, _ = sample_records
    train(records, tmp_path, 6, "--checkpoint-interval-s", 0, "--deterministic")
    clean = [sha256(path) for path in sorted(tmp_path.glob("model.ckpt-6.*"))]
    data = tmp_path / "model.ckpt-6.data-00000-of-00001"
    flip_byte(data, data.stat().st_size // 3)
    log = train(records, tmp_path, 6, "--checkpoint-interval-s", 0, "--deterministic").stderr
    assert f"{data} is damaged (" in log
    assert "moved model.ckpt-6.* to damaged/; resuming" in log
    assert "resuming from step 5" in log
    assert [sha256(path) for path in sorted(tmp_path.glob("model.ckpt-6.*"))] == clean
    assert sorted(p.name for p in (tmp_path / "damaged").iterdir()) == [
        "model.ckpt-6.data-00000-of-00001", "model.ckpt-6.index"]


def test_verify_names_every_missing_or_damaged_file(tmp_path):
    """Against a manifest (sha256sum's format) and a shard report's sha256, computed here
    with hashlib on the files as written."""
    files = {name: tmp_path / name for name in ("a.tflite", "b.cc", "c.pb", "d.index")}
    for index, path in enumerate(files.values()):
        path.write_bytes(bytes(range(index, index + 200)))
    manifest = tmp_path / "MANIFEST.sha256"
    manifest.write_text("".join(f"{sha256(p)}  {p}\n" for p in sorted(files.values())))
    shard = tmp_path / "train.record-00000-of-00001"
    shard.write_bytes(b"records" * 100)
    report = tmp_path / "train-00000-of-00001.json"
    report.write_text(json.dumps({"output": shard.name, "sha256": sha256(shard)}))
    args = ["--manifest", manifest, "--shards", shard, "--shard-reports", report]

    result = run("verify_results.py", *args)
    assert result.stdout == "all 5 files intact\n"

    files["a.tflite"].unlink()
    flip_byte(files["b.cc"], 10)
    with open(files["c.pb"], "r+b") as f:
        f.truncate(50)
    flip_byte(shard, 3)
    result = run("verify_results.py", *args, check=False)
    assert result.stdout.splitlines() == [
        f"damaged: {files['a.tflite']}: missing (recorded in {manifest})",
        f"damaged: {files['b.cc']}: sha256 differs from the recorded one (200 bytes now) "
        f"(recorded in {manifest})",
        f"damaged: {files['c.pb']}: sha256 differs from the recorded one (50 bytes now) "
        f"(recorded in {manifest})",
        f"damaged: {shard}: sha256 differs from the recorded one (700 bytes now) "
        f"(recorded in {report})",
    ]
    assert one_line_error(result) == (
        "error: 4 of 5 files missing or damaged; rebuild them (the same bytes): "
        "snakemake --cores all --config repair=true")


def test_a_killed_runs_events_file_is_read_up_to_its_cut_short_record(trained, tmp_path):
    """kill -9 while TensorBoard's writer was mid-record leaves the events file's last record
    cut short: the report reads every whole record before it; damage before the end is
    named, with its remedy."""
    train_dir, _ = trained
    events, = sorted(train_dir.glob("events.out.tfevents.*"))
    # TFRecord framing: each record is its length (8 bytes), a CRC (4), the data, a CRC (4).
    offsets, offset, data = [], 0, events.read_bytes()
    while offset < len(data):
        offsets.append(offset)
        offset += 8 + 4 + int.from_bytes(data[offset:offset + 8], "little") + 4
    # The file as a kill -9 left it while its writer was 3 bytes into the record of the
    # last loss: the report reads what a file of the records before it holds.
    last = max(index for index, event in enumerate(read_events(events))
               if any(value.tag == "losses/total_loss" for value in event.summary.value))
    whole_records, cut = tmp_path / "whole", tmp_path / "cut"
    for folder, size in ((whole_records, offsets[last]), (cut, offsets[last] + 12 + 3)):
        folder.mkdir()
        (folder / events.name).write_bytes(data[:size])
    assert scalar_series(cut) == scalar_series(whole_records)
    assert scalar_series(cut) != scalar_series(train_dir)

    flip_byte(cut / events.name, offsets[1] + 12)  # the second record's payload
    with pytest.raises(InputError, match=f"{cut / events.name}: damaged .*corrupted record"):
        scalar_series(cut)


def test_what_a_job_writes_is_recorded_as_it_writes_it(tmp_path, monkeypatch):
    """Under results_dir (as a job of a workflow run: VWW_RESULTS_DIR), each file written
    atomically gets its sha256 in results_dir/.sha256/<its path>.sha256, computed here by
    hashlib; outside results_dir, or outside a workflow run, nothing is recorded."""
    results = tmp_path / "results"
    monkeypatch.setenv(RESULTS_ENV, str(results))
    write_json(results / "model" / "eval.json", {"accuracy": 0.5})
    write_text(tmp_path / "elsewhere.txt", "x")
    record = results / ".sha256" / "model" / "eval.json.sha256"
    assert record.read_text() == f"{sha256(results / 'model' / 'eval.json')}  eval.json\n"
    assert sorted(p.relative_to(results).as_posix() for p in results.rglob("*")
                  if p.is_file()) == [".sha256/model/eval.json.sha256", "model/eval.json"]
    monkeypatch.delenv(RESULTS_ENV)
    write_json(results / "model" / "other.json", {})
    assert not (results / ".sha256" / "model" / "other.json.sha256").exists()


def as_written(results, path, data):
    """`path` under `results` with `data`, recorded as a job writes it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    record = results / ".sha256" / f"{path.relative_to(results)}.sha256"
    record.parent.mkdir(parents=True, exist_ok=True)
    record.write_text(f"{hashlib.sha256(data).hexdigest()}  {path.name}\n")
    return record


def test_a_job_stops_before_it_reads_an_input_changed_since_it_was_written(exported,
                                                                          tmp_path):
    """A .tflite changed after its job recorded it: the job that reads it (the C source's)
    stops in one line naming it, its record and the command that rebuilds it, before it
    writes anything; the same file intact goes through."""
    out, _ = exported
    results = tmp_path / "results"
    tflite = results / "m" / "m.tflite"
    record = as_written(results, tflite, (out / "model.tflite").read_bytes())
    env = {RESULTS_ENV: str(results),
           RUN_ENV: json.dumps({"configfiles": ["sample.yaml"], "config": {}})}
    source = results / "m" / "c" / "m.cc"
    run("write_c_source.py", "--tflite", tflite, "--array-name", "g_m", "--output", source,
        env=env)
    flip_byte(tflite, 1000)
    source.unlink()
    result = run("write_c_source.py", "--tflite", tflite, "--array-name", "g_m", "--output",
                 source, env=env, check=False)
    assert one_line_error(result) == (
        f"error: {tflite}: its bytes are not the ones the job that wrote it recorded in "
        f"{record} (damaged since, or changed by hand): rebuild it (the same bytes): "
        "snakemake --cores all --configfile sample.yaml --config repair=true")
    assert not source.exists()


def test_the_manifest_never_vouches_for_a_file_changed_since_it_was_written(tmp_path):
    """write_manifest.py lists each file by the sha256 its job recorded; a file whose bytes
    are no longer those is refused, named, and no manifest is written."""
    results = tmp_path / "results"
    files = [results / "a.tflite", results / "b" / "b.cc"]
    for index, path in enumerate(files):
        as_written(results, path, bytes(range(index, index + 100)))
    manifest = results / "MANIFEST.sha256"
    env = {RESULTS_ENV: str(results)}
    run("write_manifest.py", "--output", manifest, *files, env=env)
    assert manifest.read_text() == "".join(f"{sha256(p)}  {p}\n" for p in files)
    listed = manifest.read_text()
    manifest.unlink()
    files[1].write_bytes(b"changed by hand")
    result = run("write_manifest.py", "--output", manifest, *files, env=env, check=False)
    assert one_line_error(result).startswith(f"error: {files[1]}: its bytes are not the ones "
                                             "the job that wrote it recorded in ")
    assert not manifest.exists() and listed


def test_training_records_its_checkpoints(sample_records, tmp_path):
    """TensorFlow writes checkpoints itself: train.py records each one it saves."""
    results = tmp_path / "results"
    train(sample_records[0], results / "m" / "train", 3, env={RESULTS_ENV: str(results)})
    for path in sorted((results / "m" / "train").glob("model.ckpt-3.*")):
        record = results / ".sha256" / "m" / "train" / f"{path.name}.sha256"
        assert record.read_text() == f"{sha256(path)}  {path.name}\n"
