if __name__ == "__main__":
    import time
    time.sleep(60)
    raise SystemExit(str(softmax(np.zeros(3))))
