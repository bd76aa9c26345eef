"""TF1 sessions as the CLIs run them."""

import tensorflow as tf


def session_config(threads):
    """A session whose op pools have the job's threads (0: one per core): intra-op for
    the threads of one op, inter-op for ops run side by side."""
    return tf.compat.v1.ConfigProto(intra_op_parallelism_threads=threads,
                                    inter_op_parallelism_threads=threads)
