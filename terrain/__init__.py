"""Real-terrain corpus, renderer and their conventions, shared by training/ and validation/.

numpy + scipy (+ GDAL to read the DEMs); never imported by the plugin, never imports torch.
"""
