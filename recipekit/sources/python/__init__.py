"""The `python` source: any factory `module:function` returning a torch.nn.Module (`source`), and the
guard that watches what the factory reads while it builds the model (`reads`)."""
