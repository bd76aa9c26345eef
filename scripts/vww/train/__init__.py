"""The training stage: the train graph, checkpoints, what a run is made from, the image cache.
"""
