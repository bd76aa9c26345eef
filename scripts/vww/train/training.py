"""The training graph: slim's train_image_classifier recipe in tf.compat.v1 graph mode."""

from types import SimpleNamespace

import tensorflow as tf

from vww.model import mobilenet_v1

tf1 = tf.compat.v1
# Name of the weights' moving-average shadows in checkpoints: <variable>/<this>.
MOVING_AVERAGE_NAME = "ExponentialMovingAverage"


def learning_rate(settings, global_step, num_train_records):
    """slim's exponential decay: x factor every num_epochs_per_decay epochs, staircase."""
    decay_steps = max(1, int(num_train_records * settings["num_epochs_per_decay"]
                             / settings["batch_size"]))
    return tf1.train.exponential_decay(
        settings["learning_rate"], global_step, decay_steps,
        settings["learning_rate_decay_factor"], staircase=True,
        name="exponential_decay_learning_rate")


def moving_average(settings, global_step):
    """The exponential moving average of the model variables (slim's, with num_updates)."""
    return tf1.train.ExponentialMovingAverage(settings["moving_average_decay"], global_step,
                                              name=MOVING_AVERAGE_NAME)


def build_train_graph(images, labels, settings, num_train_records):
    """Loss, optimizer step, batch-norm updates and weight averaging for one batch.

    Run `train_op` once per step; `step_done` (fetched with it) is that step's number. Its
    order is fixed (batch-norm statistics and the gradient step first, then the moving
    average reads the updated variables), so a step's result never depends on thread
    scheduling.
    """
    global_step = tf1.train.get_or_create_global_step()
    # The step's dropout mask comes from (seed, step) alone, like its batch (dataset.py).
    dropout_seed = tf.stack([tf.constant(settings["seed"], tf.int64), global_step])
    logits, _ = mobilenet_v1.build(images, settings, is_training=True, dropout_seed=dropout_seed)
    tf1.losses.softmax_cross_entropy(tf.one_hot(labels, 2), logits,
                                     label_smoothing=settings["label_smoothing"])
    total_loss = tf1.losses.get_total_loss()  # cross entropy + weight decay
    lr = learning_rate(settings, global_step, num_train_records)
    optimizer = tf1.train.RMSPropOptimizer(
        lr, decay=settings["rmsprop_decay"], momentum=settings["rmsprop_momentum"],
        epsilon=settings["rmsprop_epsilon"])
    batch_norm_updates = tf1.get_collection(tf1.GraphKeys.UPDATE_OPS)
    gradient_step = optimizer.minimize(total_loss, global_step=global_step)
    ema = moving_average(settings, global_step)
    with tf.control_dependencies([gradient_step, *batch_norm_updates]):
        train_op = ema.apply(tf1.model_variables())
    with tf.control_dependencies([train_op]):
        step_done = global_step.read_value()  # the step this run completed
    accuracy = tf.reduce_mean(tf.cast(tf.equal(tf.argmax(logits, 1), labels), tf.float32))
    return SimpleNamespace(train_op=train_op, step_done=step_done, loss=total_loss,
                           learning_rate=lr, accuracy=accuracy, logits=logits,
                           moving_average=ema)
