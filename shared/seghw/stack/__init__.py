"""How users meet the product: the four roles (redis, trainer, visualdl, monitor) as Docker Compose
services or as a local stack of supervised processes, and the commands that drive either."""
