line = "x" * 999_999
for _ in range(200):
    print(line)
