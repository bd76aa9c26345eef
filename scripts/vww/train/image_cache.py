"""Whether training keeps its decoded images in memory: cache_images auto, true or false.

The cache spares decoding every JPEG at every step (docs/scale.md, "Throughput") and costs RAM:
every stored train image decoded, height x width x 3 bytes (about 7 GB for COCO at
max_image_side 192). `auto` caches when that fits the job's memory beside what training
needs anyway. No TensorFlow here: the Snakefile sizes the train job's mem_mb with it.
"""

import math
import os

# What training takes besides the cache: TF, the graph, the shuffle buffer of decoded
# images, prefetched batches (peak RSS on the sample: 1.2 GB).
TRAINING_MB = 3000
# Each cached image also carries its boxes, label and tf.data's bookkeeping.
CACHE_OVERHEAD = 1.1
# Share of the machine's memory `auto` may ask for when the job's own memory is not given.
HOST_SHARE = 0.8


def setting_name(setting):
    """auto, true or false, whether config YAML gave a boolean or a string."""
    return str(setting).lower()


def cache_mb(decoded_bytes):
    return math.ceil(decoded_bytes * CACHE_OVERHEAD / 2**20)


def host_memory_mb():
    """HOST_SHARE of this machine's physical memory, in MB."""
    return int(HOST_SHARE * os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**20)


def job_memory_mb(setting, decoded_bytes, available_mb):
    """mem_mb a training job asks for: training's own memory, plus the cache when it is on
    (auto: when the total fits `available_mb`). Unknown decoded_bytes (None: the dataset is
    not built yet) asks for training's own."""
    with_cache = TRAINING_MB + cache_mb(decoded_bytes or 0)
    setting = setting_name(setting)
    if decoded_bytes is None or setting == "false":
        return TRAINING_MB
    if setting == "true" or with_cache <= available_mb:
        return with_cache
    return TRAINING_MB


def decide(setting, decoded_bytes, memory_mb):
    """(cache or not, the reason in one line) for a job with `memory_mb` of memory."""
    setting = setting_name(setting)
    images_mb = cache_mb(decoded_bytes)
    if setting != "auto":
        return setting == "true", f"cache_images {setting} ({images_mb} MB of decoded images)"
    needed = TRAINING_MB + images_mb
    if needed <= memory_mb:
        return True, (f"cache_images auto: caching the decoded train images: {images_mb} MB, "
                      f"with training's {TRAINING_MB} MB within the job's {memory_mb} MB")
    return False, (f"cache_images auto: decoding at every step: caching needs {needed} MB "
                   f"({images_mb} MB of images + {TRAINING_MB} MB for training), the job has "
                   f"{memory_mb} MB (mem_mb)")
