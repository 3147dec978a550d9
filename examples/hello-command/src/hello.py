"""A plain script run once by a `command:` job: prints, works a little, and exits 0."""

import os
import platform
import time

print(f"hello from dljobs job {os.environ.get('DLJOBS_JOB_ID')} on {platform.node()}", flush=True)
for step in range(3):
    print(f"step {step}", flush=True)
    time.sleep(0.2)
print("done", flush=True)
