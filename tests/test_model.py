"""MobileNet v1 0.25 equals slim's mobilenet_v1_025: parameters, variables, layer shapes."""

import numpy as np
import pytest
import tensorflow as tf
import yaml

from conftest import REPO
from vww.model import mobilenet_v1, recipe

tf1 = tf.compat.v1
SEED_MODEL = {name: default for name, (default, _) in recipe.RECIPE.items()}


def build_graph(settings, input_shape=(None, 96, 96, 1), is_training=True):
    graph = tf.Graph()
    with graph.as_default():
        images = tf1.placeholder(tf.float32, input_shape)
        logits, end_points = mobilenet_v1.build(images, settings, is_training=is_training,
                                                dropout_seed=tf.constant([0, 0], tf.int64))
    return graph, logits, end_points


def test_parameter_count_and_variable_names():
    graph, logits, _ = build_graph(SEED_MODEL)
    with graph.as_default():
        trainable = tf1.trainable_variables()
        everything = tf1.global_variables()
    assert len(trainable) == 83
    assert sum(int(np.prod(v.shape)) for v in trainable) == 213_442
    assert sum(int(np.prod(v.shape)) for v in everything) == 218_914  # + batch-norm stats
    names = {v.op.name: tuple(v.shape) for v in everything}
    assert names["MobilenetV1/Conv2d_0/weights"] == (3, 3, 1, 8)
    assert names["MobilenetV1/Conv2d_0/BatchNorm/moving_mean"] == (8,)
    assert names["MobilenetV1/Conv2d_1_depthwise/depthwise_weights"] == (3, 3, 8, 1)
    assert names["MobilenetV1/Conv2d_1_pointwise/weights"] == (1, 1, 8, 16)
    assert names["MobilenetV1/Conv2d_13_pointwise/BatchNorm/gamma"] == (256,)
    assert names["MobilenetV1/Logits/Conv2d_1c_1x1/weights"] == (1, 1, 256, 2)
    assert names["MobilenetV1/Logits/Conv2d_1c_1x1/biases"] == (2,)
    blocks = [n for n in names if n.endswith("depthwise_weights")]
    assert len(blocks) == 13
    assert logits.shape.as_list() == [None, 2]


def test_layer_shapes_at_96_pixels():
    _, _, end_points = build_graph(SEED_MODEL, is_training=False)
    shapes = {name: t.shape.as_list()[1:] for name, t in end_points.items()}
    assert shapes["Conv2d_0"] == [48, 48, 8]
    assert shapes["Conv2d_1_pointwise"] == [48, 48, 16]
    assert shapes["Conv2d_3_pointwise"] == [24, 24, 32]
    assert shapes["Conv2d_5_pointwise"] == [12, 12, 64]
    assert shapes["Conv2d_11_pointwise"] == [6, 6, 128]
    assert shapes["Conv2d_13_pointwise"] == [3, 3, 256]
    assert shapes["AvgPool_1a"] == [1, 1, 256]  # the 7x7 pool shrinks to 3x3 at 96 px
    assert shapes["Predictions"] == [2]


def test_width_and_input_come_from_the_settings():
    graph, _, end_points = build_graph({**SEED_MODEL, "depth_multiplier": 0.5},
                                       input_shape=(None, 128, 128, 3))
    assert end_points["Conv2d_13_pointwise"].shape.as_list()[1:] == [4, 4, 512]
    with graph.as_default():
        first = [v for v in tf1.trainable_variables() if v.op.name.endswith("Conv2d_0/weights")]
    assert first[0].shape.as_list() == [3, 3, 3, 16]


def test_schema_defaults_are_the_recipe_defaults():
    schema = yaml.safe_load((REPO / "schemas/config.schema.yaml").read_text())
    model_schema = schema["$defs"]["model"]["properties"]
    for name, (default, _) in recipe.RECIPE.items():
        assert model_schema[name]["default"] == default, name
    config = yaml.safe_load((REPO / "config.yaml").read_text())
    for name, value in config["models"]["person_detection"].items():
        assert model_schema[name].get("default", value) == value, name


@pytest.mark.parametrize("settings", [SEED_MODEL, {**SEED_MODEL, "grayscale": False,
                                                    "eval_weights": "raw"}])
def test_recipe_flags_round_trip(settings):
    import argparse
    parser = argparse.ArgumentParser()
    recipe.add_arguments(parser)
    assert recipe.from_args(parser.parse_args(recipe.as_flags(settings).split())) == settings
