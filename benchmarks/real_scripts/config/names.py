# a small run on names.txt
batch_size = 32
block_size = 3
