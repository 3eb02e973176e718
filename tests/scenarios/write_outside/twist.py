import os
for target in ["@ROOT@/submissions/pwned.txt", "@ROOT@/reports/pwned.txt", "@ROOT@/reference/pwned.py",
               "@CANARY@/pwned.txt", "/tmp/../work/pwned.txt"]:
    try:
        with open(target, "w") as handle:
            handle.write("pwned")
    except OSError:
        pass
