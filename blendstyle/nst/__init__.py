"""The tensor maths of neural style transfer, without files: the network with named layers, losses and
style-loss kinds (pure functions and thin modules), targets and blends, regions, the objective, the
optimiser, colour, temporal coherence, tiles and memory estimates."""
