import os
print(sum(1 for _ in open(os.environ['TRAIN_DATA_PATH'])))
