"""The seed tutorial's PyTorch MNIST network and training loop, run by dljobs as custom code.

Nothing of the tutorial is changed but where the data comes from: MNIST cannot be downloaded here, so
scikit-learn's bundled 8x8 digits are scaled up to MNIST's 28x28 and normalised with MNIST's mean and
standard deviation, as the tutorial's transform normalises MNIST. dljobs calls `train_loop(config)` on
every worker (`entrypoint: train.py:train_loop`); with one worker the tutorial's code runs as it is.
"""
# The tutorial's code stays exactly as published, so its style is exempt from the project's lint and format:
# ruff: noqa: UP008, B007

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F
import torch.optim as optim
from sklearn.datasets import load_digits
from torch.utils.data import TensorDataset

from dljobs.workloads import api

# --- the tutorial's network and training loop, unchanged ------------------------------------------------
# fmt: off


class NeuralNetwork(nn.Module):
    def __init__(self):
        super(NeuralNetwork, self).__init__()
        self.flatten = nn.Flatten()
        self.fc1 = nn.Linear(28*28, 128)
        self.dropout1 = nn.Dropout(0.2)
        self.fc2 = nn.Linear(128, 64)
        self.dropout2 = nn.Dropout(0.2)
        self.fc3 = nn.Linear(64, 10)

    def forward(self, x):
        x = self.flatten(x)
        x = torch.relu(self.fc1(x))
        x = self.dropout1(x)
        x = torch.relu(self.fc2(x))
        x = self.dropout2(x)
        x = self.fc3(x)
        return x


# Training loop
def train(model, train_loader, criterion, optimizer, epochs=10):
    model.train()
    for epoch in range(epochs):
        running_loss = 0.0
        correct = 0
        total = 0
        for batch_idx, (data, target) in enumerate(train_loader):
            optimizer.zero_grad()
            output = model(data)
            loss = criterion(output, target)
            loss.backward()
            optimizer.step()
            running_loss += loss.item()
            _, predicted = torch.max(output.data, 1)
            total += target.size(0)
            correct += (predicted == target).sum().item()
        epoch_loss = running_loss / len(train_loader)
        epoch_acc = 100 * correct / total
        print(f"Epoch {epoch+1}: Loss={epoch_loss:.4f}, Accuracy={epoch_acc:.2f}%")
# fmt: on


# --- the one change: MNIST-shaped digits instead of downloading MNIST ------------------------------------

MNIST_MEAN, MNIST_STD = 0.1307, 0.3081  # the tutorial's transforms.Normalize((0.1307,), (0.3081,))


def mnist_like_digits(seed, test_fraction=1 / 6):
    """scikit-learn's 8x8 digits as MNIST tensors: (N, 1, 28, 28) in [0, 1], normalised; train and test."""
    digits = load_digits()
    images = torch.tensor(digits.images / 16.0, dtype=torch.float32).unsqueeze(1)
    images = F.interpolate(images, size=(28, 28), mode="bilinear", align_corners=False).clamp(0, 1)
    images = (images - MNIST_MEAN) / MNIST_STD
    labels = torch.tensor(digits.target, dtype=torch.int64)
    order = torch.from_numpy(np.random.default_rng(seed).permutation(len(labels)))
    split = int(len(labels) * (1 - test_fraction))
    train, test = order[:split], order[split:]
    return TensorDataset(images[train], labels[train]), TensorDataset(images[test], labels[test])


# --- dljobs' entry point ---------------------------------------------------------------------------------


def evaluate(model, test_loader):
    model.eval()
    correct = total = 0
    with torch.no_grad():
        for data, target in test_loader:
            correct += (model(data).argmax(1) == target).sum().item()
            total += target.size(0)
    return correct / total


def train_loop(config):
    seed = config["spec"]["training"]["seed"]
    torch.manual_seed(seed)
    train_dataset, test_dataset = mnist_like_digits(seed)

    # Create data loaders (as in the tutorial)
    train_loader = torch.utils.data.DataLoader(train_dataset, batch_size=64, shuffle=True)
    test_loader = torch.utils.data.DataLoader(test_dataset, batch_size=1000, shuffle=False)

    model = NeuralNetwork()
    print(model)
    # Define loss and optimizer
    criterion = nn.CrossEntropyLoss()
    optimizer = optim.Adam(model.parameters(), lr=0.001)
    train(model, train_loader, criterion, optimizer)

    accuracy = evaluate(model, test_loader)
    print(f"Test accuracy: {accuracy:.4f}")
    api.report({"test_accuracy": accuracy})
    if api.world_rank() == 0:
        torch.save(model.state_dict(), api.artifact_dir() / "model_weights.pth")
