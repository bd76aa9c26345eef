"""ROC, precision-recall, operating point and recall by person size against brute force."""

import itertools
import json

import numpy as np
import pytest

from vww.model import metrics


def scores_and_labels(seed=0, count=300):
    """int8 scores with ties (a coarse grid) and a real class separation."""
    rng = np.random.default_rng(seed)
    labels = rng.integers(0, 2, count)
    scores = np.clip(np.round(rng.normal(40 * labels - 20, 35) / 4) * 4, -128, 127)
    return labels, scores.astype(np.int8)


def brute_force_rates(labels, scores, threshold):
    """(true positive rate, false positive rate, precision or None, accuracy) of
    "positive when score >= threshold", image by image."""
    said = [int(s) >= threshold for s in scores]
    pairs = list(zip(labels, said))
    tp = sum(1 for label, yes in pairs if label == 1 and yes)
    fp = sum(1 for label, yes in pairs if label == 0 and yes)
    positives = sum(1 for label in labels if label == 1)
    negatives = len(labels) - positives
    correct = sum(1 for label, yes in pairs if (label == 1) == yes)
    return tp / positives, fp / negatives, (tp / (tp + fp) if tp + fp else None), \
        correct / len(labels)


@pytest.mark.parametrize("seed", [0, 1, 2])
def test_roc_auc_is_the_chance_a_positive_outscores_a_negative(seed):
    labels, scores = scores_and_labels(seed)
    curves = metrics.curves(labels, scores)
    pos = [int(s) for s, label in zip(scores, labels) if label == 1]
    neg = [int(s) for s, label in zip(scores, labels) if label == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    assert curves["roc_auc"] == pytest.approx(wins / (len(pos) * len(neg)), abs=1e-12)


def test_curve_points_and_average_precision_are_those_of_each_threshold():
    labels, scores = scores_and_labels(3)
    curves = metrics.curves(labels, scores)
    assert curves["thresholds"] == list(range(-128, 128))
    average_precision, previous_recall = 0.0, 0.0
    for index in range(255, -1, -1):  # from the highest threshold down
        tpr, fpr, precision, _ = brute_force_rates(labels, scores, index - 128)
        assert curves["true_positive_rate"][index] == pytest.approx(tpr)
        assert curves["false_positive_rate"][index] == pytest.approx(fpr)
        assert curves["precision"][index] == (None if precision is None
                                              else pytest.approx(precision))
        if precision is not None:
            average_precision += (tpr - previous_recall) * precision
        previous_recall = tpr
    assert curves["average_precision"] == pytest.approx(average_precision, abs=1e-12)


def test_best_accuracy_threshold_and_the_false_positive_rule():
    labels, scores = scores_and_labels(4)
    accuracy = {t: brute_force_rates(labels, scores, t)[3] for t in range(-128, 128)}
    best = max(accuracy.values())
    assert metrics.choose_threshold(labels, scores, "best_accuracy", 0) == min(
        t for t, a in accuracy.items() if a == best)
    for allowed in (0.0, 0.05, 0.2):
        chosen = metrics.choose_threshold(labels, scores, "max_false_positive_rate", allowed)
        assert chosen == min(t for t in range(-128, 128)
                             if brute_force_rates(labels, scores, t)[1] <= allowed)


def strict_json(value):
    """`value` through JSON that refuses NaN both ways, as a reader of the reports would."""
    return json.loads(json.dumps(value, allow_nan=False),
                      parse_constant=lambda name: pytest.fail(f"{name} in JSON"))


def test_a_false_positive_rate_no_threshold_reaches_leaves_no_operating_point_and_says_why():
    labels = np.array([0, 0, 1])
    scores = np.array([127, -5, 127], np.int8)
    assert metrics.choose_threshold(labels, scores, "max_false_positive_rate", 0.1) is None
    point = strict_json(metrics.operating_point(labels, scores, "max_false_positive_rate", 0.1,
                                                0.1, (1 / 256, -128)))
    why = ("no int8 threshold has a false positive rate of at most 0.1: the lowest, at 127, "
           "is 0.5000")
    assert point == {"rule": "max_false_positive_rate", "max_false_positive_rate": 0.1,
                     "unsure_margin": 0.1, **dict.fromkeys(metrics.OPERATING_MEASURES),
                     "undefined": {**dict.fromkeys(metrics.OPERATING_MEASURES, "no threshold"),
                                   "threshold": why}}


def test_a_model_scoring_every_image_alike_has_precision_at_its_score_only():
    """Every image scores -97 (a 20-step model's): 3 negatives, 2 positives."""
    labels = np.array([0, 1, 0, 1, 0])
    scores = np.full(5, -97, np.int8)
    curves = strict_json(metrics.curves(labels, scores))
    at_or_below = [t <= -97 for t in range(-128, 128)]
    assert curves["true_positive_rate"] == curves["false_positive_rate"] == list(
        map(float, at_or_below))
    assert curves["precision"] == [2 / 5 if reached else None for reached in at_or_below]
    assert curves["undefined"] == {"precision": "null at a threshold above every image's score: "
                                                "no image predicted positive, 0/0"}
    # Recall goes 0 -> 1 at -97, where precision is 2/5; the ROC is the diagonal.
    assert curves["average_precision"] == pytest.approx(2 / 5)
    assert curves["roc_auc"] == pytest.approx(1 / 2)
    # Best accuracy: nobody positive (3 right of 5), first at -96; no false positive there.
    for rule in metrics.OPERATING_RULES:
        assert metrics.choose_threshold(labels, scores, rule, 0.05) == -96
    point = strict_json(metrics.operating_point(labels, scores, "best_accuracy", 0.05, 0.0,
                                                (1 / 256, -128)))
    assert point == {"rule": "best_accuracy", "unsure_margin": 0.0, "threshold": -96,
                     "threshold_probability": 32 / 256, "accuracy": 3 / 5,
                     "true_positive_rate": 0.0, "false_positive_rate": 0.0, "unsure_low": -96,
                     "unsure_high": -96, "unsure_fraction": 0.0, "accuracy_when_sure": 3 / 5}
    # A band of 26 steps each side, [-122, -70), holds every image: none is sure.
    banded = strict_json(metrics.operating_point(labels, scores, "best_accuracy", 0.05, 0.1,
                                                 (1 / 256, -128)))
    assert (banded["unsure_low"], banded["unsure_high"], banded["unsure_fraction"]) == (
        -122, -70, 1.0)
    assert banded["accuracy_when_sure"] is None
    assert banded["undefined"] == {"accuracy_when_sure": "every image is in the unsure band"}


def test_rates_of_a_class_the_split_lacks_are_null_with_the_reason():
    point = strict_json(metrics.operating_point([0, 0], np.array([10, 20], np.int8),
                                                "best_accuracy", 0.05, 0.0, (1 / 256, -128)))
    assert (point["threshold"], point["accuracy"], point["false_positive_rate"]) == (21, 1.0, 0.0)
    assert point["true_positive_rate"] is None
    assert point["undefined"] == {"true_positive_rate": "no positive image"}


def test_operating_point_band_and_what_it_gives():
    labels = np.array([0, 0, 0, 1, 1, 1, 0, 1])
    scores = np.array([-100, -20, 10, 12, 30, 100, 60, 15], np.int8)
    point = metrics.operating_point(labels, scores, "best_accuracy", 0, 0.1, (1 / 256, -128))
    # Brute force: the lowest threshold of best accuracy; the band is 26 steps each side.
    accuracy = {t: brute_force_rates(labels, scores, t)[3] for t in range(-128, 128)}
    threshold = min(t for t, a in accuracy.items() if a == max(accuracy.values()))
    assert point["threshold"] == threshold == 11
    assert point["threshold_probability"] == (11 + 128) / 256
    assert (point["unsure_low"], point["unsure_high"]) == (11 - 26, 11 + 26)
    assert point["accuracy"] == accuracy[threshold] == 7 / 8
    # Decisions with the band: -100 -20 no; 10 12 30 15 unsure; 100 60 yes.
    assert point["unsure_fraction"] == 4 / 8
    assert point["accuracy_when_sure"] == 3 / 4
    np.testing.assert_array_equal(metrics.decide(scores, -15, 37), [0, 0, -1, -1, -1, 1, 1, -1])
    without = metrics.operating_point(labels, scores, "best_accuracy", 0, 0.0, (1 / 256, -128))
    assert without["unsure_low"] == without["unsure_high"] == 11
    assert without["unsure_fraction"] == 0 and without["accuracy_when_sure"] == 7 / 8


def test_recall_by_person_size_buckets():
    labels = [0, 0, 1, 1, 1, 1, 1, 1]
    predicted = [0, 1, 1, 0, 1, 1, 0, 1]
    boxes = [0.0, 0.01, 0.01, 0.03, 0.05, 0.5, 1.0, 0.0]
    buckets = metrics.recall_by_person_size(labels, predicted, boxes)
    assert [(b["bucket"], b["images"], b["recall"]) for b in buckets] == [
        ("no person", 2, 0.5), ("0%-2%", 1, 1.0), ("2%-5%", 1, 0.0), ("5%-15%", 1, 1.0),
        ("15%-40%", 0, None), ("40%-100%", 2, 0.5), ("size unknown", 1, 1.0)]
    assert (buckets[3]["min_box_fraction"], buckets[3]["max_box_fraction"]) == (0.05, 0.15)


def test_recall_by_person_size_of_a_model_that_never_says_person():
    buckets = strict_json(metrics.recall_by_person_size([0, 0, 1, 1], [0, 0, 0, 0],
                                                        [0.0, 0.0, 0.03, 0.5]))
    assert [(b["bucket"], b["images"], b["recall"]) for b in buckets] == [
        ("no person", 2, 1.0), ("0%-2%", 0, None), ("2%-5%", 1, 0.0), ("5%-15%", 0, None),
        ("15%-40%", 0, None), ("40%-100%", 1, 0.0)]
    empty = {"recall": "no image in this bucket"}
    assert [b.get("undefined") for b in buckets] == [None, empty, None, empty, empty, None]
