"""From files to token ids: reading text, built-in corpora, tokenizers (characters,
sentencepiece), the cached id file and the batches cut from it."""
