"""The training input pipeline on real TFRecords: seeded, and neither caching nor
prefetching to a device changes anything."""

import numpy as np
import pytest
import tensorflow as tf

from vww.model import recipe
from vww.model.dataset import record_files, train_dataset

SETTINGS = {**{name: default for name, (default, _) in recipe.RECIPE.items()},
            "batch_size": 16, "shuffle_buffer": 64}


def batches(records, count=12, **overrides):
    """The first `count` batches (more than an epoch of the sample: the cache replays)."""
    data = train_dataset(record_files(records["train"], "train"), {**SETTINGS, **overrides}, seed=3,
                         deterministic=True, threads=2)
    return list(data.take(count).as_numpy_iterator())


@pytest.fixture(scope="module")
def uncached(sample_records):
    records, _ = sample_records
    return batches(records, cache_images=False)


def test_cached_images_give_the_same_batches(sample_records, uncached):
    records, counts = sample_records
    assert 12 * 16 > counts["train"]  # the second epoch comes from the cache
    for (images, labels), (cached_images, cached_labels) in zip(
            uncached, batches(records, cache_images=True)):
        assert np.array_equal(images, cached_images) and np.array_equal(labels, cached_labels)


def test_batches_are_finished_model_inputs(uncached):
    images, labels = uncached[0]
    assert images.shape == (16, 96, 96, 1) and images.dtype == np.float32
    assert -1.0 <= images.min() and images.max() <= 1.0
    assert set(labels.tolist()) <= {0, 1}
    assert not np.array_equal(uncached[0][0], uncached[1][0])


def test_the_seed_fixes_the_stream(sample_records, uncached):
    records, _ = sample_records
    again = batches(records, count=2, cache_images=False)
    assert all(np.array_equal(a[0], b[0]) for a, b in zip(uncached, again))


def test_batches_prefetched_to_a_device_are_the_same(sample_records):
    """The GPU path (batches waiting in the device's memory), run as train.py runs it (a TF1
    graph, a one-shot iterator) with the CPU as the device: the same batches."""
    records, _ = sample_records
    settings = {**SETTINGS, "cache_images": False}
    files = record_files(records["train"], "train")

    def first_batches(device):
        with tf.Graph().as_default():
            data = train_dataset(files, settings, seed=3, deterministic=True, threads=2,
                                 device=device)
            batch = tf.compat.v1.data.make_one_shot_iterator(data).get_next()
            with tf.compat.v1.Session() as sess:
                return [sess.run(batch) for _ in range(2)]

    for (images, labels), (on_device, device_labels) in zip(first_batches(None),
                                                            first_batches("/cpu:0")):
        assert np.array_equal(images, on_device) and np.array_equal(labels, device_labels)


@pytest.mark.parametrize("cache_images", [False, True])
def test_a_stream_started_at_step_s_is_the_uninterrupted_stream_from_s(sample_records,
                                                                        cache_images):
    """What a resumed run reads: from step s (here in the middle of the second epoch),
    exactly the batches s, s + 1, ... of a run that started at 0."""
    records, counts = sample_records
    settings = {**SETTINGS, "cache_images": cache_images}
    files = record_files(records["train"], "train")
    start = counts["train"] // 16 + 2
    assert (start * 16) % counts["train"] and start * 16 > counts["train"]

    def stream(start_step, count):
        data = train_dataset(files, settings, seed=3, deterministic=True, threads=2,
                             start_step=start_step, num_records=counts["train"])
        return list(data.take(count).as_numpy_iterator())

    resumed, uninterrupted = stream(start, 4), stream(0, start + 4)[start:]
    for (images, labels), (expected_images, expected_labels) in zip(resumed, uninterrupted):
        assert np.array_equal(images, expected_images)
        assert np.array_equal(labels, expected_labels)
    # Each epoch has an order of its own.
    assert not np.array_equal(uninterrupted[0][0], stream(start - counts["train"] // 16, 1)[0][0])


def without_boxes(shards, folder):
    """Copies of the TFRecord `shards` (same names) with every object box removed."""
    folder.mkdir()
    copies = []
    for shard in shards:
        copy = folder / shard.name
        with tf.io.TFRecordWriter(str(copy)) as writer:
            for serialized in tf.data.TFRecordDataset(str(shard)):
                example = tf.train.Example.FromString(serialized.numpy())
                for side in ("xmin", "xmax", "ymin", "ymax"):
                    del example.features.feature[f"image/object/bbox/{side}"]
                writer.write(example.SerializeToString(deterministic=True))
        copies.append(copy)
    return copies


def test_the_crop_setting_says_whether_person_boxes_guide_the_crop(sample_records, tmp_path):
    """whole_image (the TFLM guide's) never looks at the boxes: the same batches without them;
    person_boxes does, and without boxes crops as whole_image."""
    records, _ = sample_records
    boxless = {"train": without_boxes(records["train"], tmp_path / "boxless")}

    def same(first, second):
        return all(np.array_equal(a[0], b[0]) for a, b in zip(first, second, strict=True))

    whole = batches(records, count=3, crop="whole_image")
    assert same(whole, batches(boxless, count=3, crop="whole_image"))
    guided = batches(records, count=3, crop="person_boxes")
    assert not same(guided, whole)
    assert same(batches(boxless, count=3, crop="person_boxes"), whole)
