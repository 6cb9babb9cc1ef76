"""Ranking: friend and global rankings from the Redis boards; the board writer; precompute."""
