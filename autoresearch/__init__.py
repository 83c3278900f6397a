"""autoresearch: let an AI agent do experimental research on a codebase."""
