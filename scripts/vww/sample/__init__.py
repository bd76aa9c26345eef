"""Test data, not the production path: the synthetic COCO 2014 the sample and the tests use.
"""
