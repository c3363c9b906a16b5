"""INK spawner: profiles, authorization, batch backends and the job wrapper."""
