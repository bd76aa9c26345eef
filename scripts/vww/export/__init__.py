"""The export stage: inference graph and freezing, int8 conversion, LiteRT, the per-layer
table, TFLM's interpreter, model.json, importing an int8 .tflite.
"""
