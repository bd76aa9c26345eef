"""One logging setup for every CLI: to the job's log file under Snakemake, else stderr."""

import logging


def setup_logging(log_file=None, level=logging.INFO):
    handler = logging.FileHandler(log_file) if log_file else logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
    logging.basicConfig(level=level, handlers=[handler], force=True)
