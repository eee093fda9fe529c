# Thin wrappers around the deno tasks and Docker; deno.json holds the flags.
IMAGE ?= chat-server
ENV ?= local
PORT ?= 8080
DENO ?= deno

.PHONY: test run compile docker-build docker-run clean

test:
	$(DENO) task test

run:
	$(DENO) task start --env $(ENV) --port $(PORT)

compile:
	$(DENO) task compile

docker-build:
	docker build --build-arg CHAT_ENV=$(ENV) -t $(IMAGE):$(ENV) .

docker-run:
	docker run --rm -p $(PORT):8080 $(IMAGE):$(ENV)

clean:
	rm -rf dist
