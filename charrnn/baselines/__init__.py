"""Count-based reference models: n-gram language models and a naive Bayes classifier,
fitted exactly in seconds, so a user sees what learning something means on their data."""
