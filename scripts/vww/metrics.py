"""Scores of a split turned into what a deployment needs: ROC and precision-recall curves,
an operating threshold with an optional "unsure" band, and recall by person size.

Scores are the int8 output of the positive class (index 1): a board compares that byte
with a threshold, so every curve point is an int8 threshold t, "positive when score >= t".
"""

import numpy as np

from vww.cli import InputError

POSITIVE = 1  # the category's index in the model's output
INT8_THRESHOLDS = np.arange(-128, 128)
# Buckets of the largest person box's share of the image area: [low, high); the last
# includes 1. COCO's person label needs an object over 0.5% of the image, so the first
# bucket holds the persons a board sees far away.
PERSON_SIZE_EDGES = (0.0, 0.02, 0.05, 0.15, 0.4, 1.0)
NO_PERSON = "no person"
OPERATING_RULES = ("best_accuracy", "max_false_positive_rate")


def recall_by_person_size(labels, predicted, largest_box):
    """[{"bucket", "images", "recall"}]: the share of each bucket's images given their true
    class, in bucket order. Buckets: the negative images (NO_PERSON; their recall is the
    true negative rate), then the positive ones by their largest box's area fraction in
    [min_box_fraction, max_box_fraction) (PERSON_SIZE_EDGES), then, if any, positive images
    without boxes (an image folder's: "size unknown"). recall is None for an empty bucket."""
    labels, predicted, largest_box = map(np.asarray, (labels, predicted, largest_box))
    positive = labels == POSITIVE
    sized = positive & (largest_box > 0)
    buckets = [({"bucket": NO_PERSON}, ~positive)]
    edges = PERSON_SIZE_EDGES
    for index, (low, high) in enumerate(zip(edges, edges[1:])):
        buckets.append(({"bucket": f"{low:.0%}-{high:.0%}", "min_box_fraction": low,
                         "max_box_fraction": high},
                        sized & (np.digitize(largest_box, edges[1:-1]) == index)))
    if np.any(positive & ~sized):
        buckets.append(({"bucket": "size unknown"}, positive & ~sized))
    return [{**bucket, "images": int(mask.sum()),
             "recall": float(np.mean(predicted[mask] == labels[mask])) if mask.any() else None}
            for bucket, mask in buckets]


def threshold_counts(labels, scores):
    """(true positives, false positives) at each of INT8_THRESHOLDS."""
    labels, scores = np.asarray(labels), np.asarray(scores, np.int64)
    positives = np.bincount(scores[labels == POSITIVE] + 128, minlength=256)
    negatives = np.bincount(scores[labels != POSITIVE] + 128, minlength=256)
    # Images at or above each threshold: counts summed from the top score down.
    return positives[::-1].cumsum()[::-1], negatives[::-1].cumsum()[::-1]


def curves(labels, scores):
    """ROC and precision-recall over the int8 thresholds, with their areas.

    roc_auc is the trapezoid area under the ROC from (0, 0) to (1, 1): the chance that a
    random positive image scores above a random negative one, ties counting half.
    average_precision is the precision at each threshold weighted by the recall it adds.
    A threshold no image reaches has no precision (None). Both classes must be present.
    """
    true_pos, false_pos = threshold_counts(labels, scores)
    num_pos, num_neg = true_pos[0], false_pos[0]
    tpr, fpr = true_pos / num_pos, false_pos / num_neg
    predicted = true_pos + false_pos
    precision = np.divide(true_pos, predicted, out=np.zeros(len(predicted)), where=predicted > 0)
    # Thresholds from high to low, from (0, 0) (none positive) to the lowest, -128, at
    # which every image is positive: (1, 1).
    tpr_up, fpr_up = np.concatenate([[0.0], tpr[::-1]]), np.concatenate([[0.0], fpr[::-1]])
    roc_auc = float(np.sum(np.diff(fpr_up) * (tpr_up[1:] + tpr_up[:-1]) / 2))
    recall_gain = -np.diff(np.append(tpr, 0.0))
    average_precision = float(np.sum(recall_gain * precision))
    return {
        "roc_auc": roc_auc,
        "average_precision": average_precision,
        "thresholds": INT8_THRESHOLDS.tolist(),
        "true_positive_rate": tpr.tolist(),
        "false_positive_rate": fpr.tolist(),
        "precision": [float(p) if n else None for p, n in zip(precision, predicted)],
    }


def choose_threshold(labels, scores, rule, max_false_positive_rate):
    """The int8 threshold `rule` picks (OPERATING_RULES): the one of best accuracy
    (the lowest of equals), or the lowest whose false positive rate is at most
    `max_false_positive_rate`."""
    true_pos, false_pos = threshold_counts(labels, scores)
    num_neg = false_pos[0]
    if rule == "best_accuracy":
        correct = true_pos + (num_neg - false_pos)
        return int(INT8_THRESHOLDS[np.argmax(correct)])
    allowed = np.flatnonzero(false_pos <= max_false_positive_rate * num_neg)
    if not allowed.size:
        raise InputError("max_false_positive_rate",
                         f"{max_false_positive_rate} is below every int8 threshold's false "
                         f"positive rate (lowest {false_pos[-1] / num_neg:.4f} at 127)")
    return int(INT8_THRESHOLDS[allowed[0]])


def decide(scores, low, high):
    """Per int8 score: 1 (positive) at or above `high`, 0 below `low`, -1 (unsure) between."""
    scores = np.asarray(scores)
    return np.where(scores >= high, 1, np.where(scores < low, 0, -1))


def operating_point(labels, scores, rule, max_false_positive_rate, unsure_margin,
                    output_quantization):
    """The threshold `rule` picks on these scores and the unsure band around it, with what
    they give on these images. The band is the scores less than `unsure_margin` (a
    probability) from the threshold, margin / output scale int8 steps each side: positive
    at or above unsure_high, negative below unsure_low, unsure between (none when the
    margin is 0). `output_quantization` (scale, zero point) gives the probabilities."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    scale, zero_point = output_quantization
    threshold = choose_threshold(labels, scores, rule, max_false_positive_rate)
    steps = int(round(unsure_margin / scale))
    low, high = max(threshold - steps, -128), min(threshold + steps, 127)
    positive = labels == POSITIVE
    at_threshold = decide(scores, threshold, threshold)
    decision = decide(scores, low, high)
    sure = decision >= 0
    return {
        "rule": rule,
        **({"max_false_positive_rate": max_false_positive_rate}
           if rule == "max_false_positive_rate" else {}),
        "threshold": threshold,
        "threshold_probability": scale * (threshold - zero_point),
        "accuracy": float(np.mean(at_threshold == labels)),
        "true_positive_rate": float(np.mean(at_threshold[positive] == 1)),
        "false_positive_rate": float(np.mean(at_threshold[~positive] == 1)),
        "unsure_margin": unsure_margin,
        "unsure_low": low,
        "unsure_high": high,
        "unsure_fraction": float(np.mean(~sure)),
        "accuracy_when_sure": float(np.mean(decision[sure] == labels[sure])) if sure.any()
        else None,
    }
