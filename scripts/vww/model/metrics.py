"""Scores of a split turned into what a deployment needs: ROC and precision-recall curves,
an operating threshold with an optional "unsure" band, and recall by person size.

Scores are the int8 output of the positive class (index 1): a board compares that byte
with a threshold, so every curve point is an int8 threshold t, "positive when score >= t".

A rate with nothing to count (a weak model's precision where it predicts no image
positive, the recall of an empty size bucket) is None, and the dict holding it says why
under "undefined": {key: reason}. JSON has no NaN.
"""

import numpy as np

POSITIVE = 1  # the category's index in the model's output
INT8_THRESHOLDS = np.arange(-128, 128)
# Buckets of the largest person box's share of the image area: [low, high); the last
# includes 1. COCO's person label needs an object over 0.5% of the image, so the first
# bucket holds the persons a board sees far away.
PERSON_SIZE_EDGES = (0.0, 0.02, 0.05, 0.15, 0.4, 1.0)
NO_PERSON = "no person"
# What an operating point measures at its threshold: all None when no threshold meets its rule.
OPERATING_MEASURES = ("threshold", "threshold_probability", "accuracy", "true_positive_rate",
                      "false_positive_rate", "unsure_low", "unsure_high", "unsure_fraction",
                      "accuracy_when_sure")


def share(hits):
    """The fraction of true `hits`, or None for none (their mean, NaN, is not JSON)."""
    return float(np.mean(hits)) if np.size(hits) else None


def with_reasons(values, reasons):
    """`values` and, if some are None, "undefined": {key: reasons[key]} for those."""
    undefined = {key: reasons[key] for key, value in values.items() if value is None}
    return {**values, "undefined": undefined} if undefined else values


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
    return [with_reasons({**bucket, "images": int(mask.sum()),
                          "recall": share(predicted[mask] == labels[mask])},
                         {"recall": "no image in this bucket"})
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
    A threshold above every image's score has no precision (None): no image is predicted
    positive there; a model that scores every image alike has precision at its score and
    below only. Both classes must be present.
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
        **({"undefined": {"precision": "null at a threshold above every image's score: no "
                                       "image predicted positive, 0/0"}}
           if not predicted.all() else {}),
    }


def best_accuracy_threshold(true_pos, false_pos, max_false_positive_rate):
    """The index of the threshold of best accuracy (the lowest of equals)."""
    num_neg = false_pos[0]
    return int(np.argmax(true_pos + (num_neg - false_pos)))


def lowest_threshold_within_false_positive_rate(true_pos, false_pos, max_false_positive_rate):
    """The index of the lowest threshold whose false positive rate is at most
    `max_false_positive_rate`, or None (negatives scoring 127, which every threshold
    passes, are too many)."""
    allowed = np.flatnonzero(false_pos <= max_false_positive_rate * false_pos[0])
    return int(allowed[0]) if allowed.size else None


# How the operating threshold is chosen: the recipe's operating_rule, a registry as
# vww.model.registry's (fn(true positives, false positives per threshold,
# max_false_positive_rate) -> the threshold's index in INT8_THRESHOLDS, or None).
OPERATING_RULES = {
    "best_accuracy": best_accuracy_threshold,
    "max_false_positive_rate": lowest_threshold_within_false_positive_rate,
}


def choose_threshold(labels, scores, rule, max_false_positive_rate):
    """The int8 threshold OPERATING_RULES[rule] picks on these scores, or None."""
    index = OPERATING_RULES[rule](*threshold_counts(labels, scores), max_false_positive_rate)
    return None if index is None else int(INT8_THRESHOLDS[index])


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
    margin is 0). `output_quantization` (scale, zero point) gives the probabilities.
    When no threshold meets the rule, every OPERATING_MEASURES is None, with the reason."""
    labels, scores = np.asarray(labels), np.asarray(scores)
    scale, zero_point = output_quantization
    threshold = choose_threshold(labels, scores, rule, max_false_positive_rate)
    positive = labels == POSITIVE
    settings = {
        "rule": rule,
        **({"max_false_positive_rate": max_false_positive_rate}
           if rule == "max_false_positive_rate" else {}),
        "unsure_margin": unsure_margin,
    }
    if threshold is None:
        reason = (f"no int8 threshold has a false positive rate of at most "
                  f"{max_false_positive_rate}: the lowest, at 127, is "
                  f"{share(scores[~positive] >= 127):.4f}")
        return {**settings, **dict.fromkeys(OPERATING_MEASURES),
                "undefined": {**dict.fromkeys(OPERATING_MEASURES, "no threshold"),
                              "threshold": reason}}
    steps = int(round(unsure_margin / scale))
    low, high = max(threshold - steps, -128), min(threshold + steps, 127)
    at_threshold = decide(scores, threshold, threshold)
    decision = decide(scores, low, high)
    sure = decision >= 0
    return with_reasons({
        **settings,
        "threshold": threshold,
        "threshold_probability": scale * (threshold - zero_point),
        "accuracy": share(at_threshold == labels),
        "true_positive_rate": share(at_threshold[positive] == 1),
        "false_positive_rate": share(at_threshold[~positive] == 1),
        "unsure_low": low,
        "unsure_high": high,
        "unsure_fraction": share(~sure),
        "accuracy_when_sure": share(decision[sure] == labels[sure]),
    }, {"true_positive_rate": "no positive image", "false_positive_rate": "no negative image",
        "accuracy_when_sure": "every image is in the unsure band"})
