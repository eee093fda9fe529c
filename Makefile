# Thin wrappers around the deno tasks and Docker; deno.json holds the flags.
# `make help` lists the targets.
IMAGE ?= chat-server
# The environment of `make run` (config/<ENV>/)...
ENV ?= local
# ...and the one baked into the image, as the Dockerfile's default.
DOCKER_ENV ?= prod
PORT ?= 8080
DENO ?= deno

.PHONY: help test run compile docker-build docker-run clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F ':.*## ' '{ printf "  %-13s %s\n", $$1, $$2 }'

test: ## run every check and test (deno task test)
	$(DENO) task test

run: ## run the server (ENV=local, PORT=8080; ENV=prod listens on every interface)
	$(DENO) task start --env $(ENV) --port $(PORT)

compile: ## build the single binary dist/chat-server
	$(DENO) task compile

docker-build: ## build the image chat-server:prod (IMAGE=, DOCKER_ENV=)
	docker build --build-arg CHAT_ENV=$(DOCKER_ENV) -t $(IMAGE):$(DOCKER_ENV) .

docker-run: ## run the image on PORT, history kept in the volume chat-data
	docker run --rm -p $(PORT):8080 -v chat-data:/app/data $(IMAGE):$(DOCKER_ENV)

clean: ## remove build output and the local history file (data/)
	rm -rf dist data
