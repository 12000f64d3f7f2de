"""Fixtures of the GitHub tests: one local GitHub API peer per module, reset for each test."""

import pytest

from tests.sources.github.github_fake import REPO, GithubFake


@pytest.fixture(scope="module")
def server():
    with GithubFake() as fake:
        yield fake


@pytest.fixture
def fake(server):
    server.reset()
    server.add_repository(REPO)
    return server
