#!/usr/bin/env python3
"""Print every JSON file under schemas/ (one per line), for meson's embed step."""
import os
import sys

root = sys.argv[1]
for d, _, fs in sorted(os.walk(root)):
    for f in sorted(fs):
        if f.endswith('.json'):
            print(os.path.join(d, f))
