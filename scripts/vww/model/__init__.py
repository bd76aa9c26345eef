"""The network and what feeds and measures it, shared by training, evaluation, export and
prediction: MobileNet v1, the one preprocessing module, the recipe and its registries,
tf.data pipelines, metrics.
"""
