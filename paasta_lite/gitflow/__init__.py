"""Git as the control plane: deploy and state tags (pure), and the one module that runs git."""
