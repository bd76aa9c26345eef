"""What an int8 .tflite computes, op by op: op counts and the per-layer table (MACs,
parameters, activation bytes)."""

from collections import Counter

import numpy as np


def op_counts(runner):
    """{op name: count} of the model's operators."""
    return dict(sorted(Counter(op["op_name"] for op in runner._get_ops_details()).items()))


def layer_table(runner):
    """One row per operator, in execution order: {"op", "output_shape", "macs",
    "parameters", "activation_bytes", "live_bytes"}.

    macs: multiply-accumulates of a convolution (kernel [oc, kh, kw, ic]; depthwise
    [1, kh, kw, oc]) or fully connected layer, 0 for the others. parameters: elements of
    such a layer's weights and bias (a reshape's shape does not count). activation_bytes:
    its output's bytes. live_bytes: its activation inputs' and output's bytes, which must
    sit in the tensor arena at once while it runs, so the largest bounds the arena from
    below.
    """
    tensors = {t["index"]: t for t in runner.get_tensor_details()}
    ops = runner._get_ops_details()
    # Constants (weights, biases, shapes) are stored in the model: no op computes them and
    # they are not the model's input.
    computed = {i for op in ops for i in op["outputs"]}
    computed.update(d["index"] for d in runner.get_input_details())
    constants = set(tensors) - computed

    def size(index):
        return int(np.prod(tensors[index]["shape"]))

    rows = []
    for op in ops:
        name = op["op_name"]
        inputs = [i for i in op["inputs"] if i >= 0]
        output = op["outputs"][0]
        if name in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            _, kernel_h, kernel_w, kernel_c = tensors[inputs[1]]["shape"]
            per_output = kernel_h * kernel_w * (kernel_c if name == "CONV_2D" else 1)
        elif name == "FULLY_CONNECTED":
            per_output = tensors[inputs[1]]["shape"][-1]
        else:
            per_output = 0
        itemsize = {i: np.dtype(tensors[i]["dtype"]).itemsize for i in [*inputs, output]}
        rows.append({
            "op": name,
            "output_shape": tensors[output]["shape"].tolist(),
            "macs": size(output) * int(per_output),
            "parameters": sum(size(i) for i in inputs if i in constants) if per_output else 0,
            "activation_bytes": size(output) * itemsize[output],
            "live_bytes": sum(size(i) * itemsize[i] for i in [*inputs, output]
                              if i not in constants),
        })
    return rows
