#!/usr/bin/env python3
"""End-to-end PTQ script: ``python aidge_ptq.py --model resnet`` (see --help)."""
import sys

from aidge_ptq_lite.cli import main

if __name__ == "__main__":
    sys.exit(main())
