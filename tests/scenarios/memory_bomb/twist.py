hoard = []
while True:
    hoard.append(bytearray(50 * 2**20))
