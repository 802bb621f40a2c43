"""Data: Moving MNIST generation, MNIST digits, the standard test-file layout and users' clips."""
