// The rocketmq-client-go v2 quick start, pointed at `rocketbridge start`: a producer sends to topic
// "test" with SendSync, then a push consumer in group "testGroup" reads the topic from the first offset.
// See README.md in this folder for how to run it (this folder deliberately has no go.mod).
package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"time"

	"github.com/apache/rocketmq-client-go/v2"
	"github.com/apache/rocketmq-client-go/v2/consumer"
	"github.com/apache/rocketmq-client-go/v2/primitive"
	"github.com/apache/rocketmq-client-go/v2/producer"
)

const (
	nameServer = "127.0.0.1:9876"
	topic      = "test"
	group      = "testGroup"
	count      = 10
)

func main() {
	// Send first: the push consumer's Start fails when the topic has no route yet, and the first send
	// creates the topic on the broker (auto-create from TBW102).
	p, err := rocketmq.NewProducer(
		producer.WithNsResolver(primitive.NewPassthroughResolver([]string{nameServer})),
		producer.WithRetry(2),
	)
	if err != nil {
		fail("create producer", err)
	}
	if err = p.Start(); err != nil {
		fail("start producer", err)
	}
	for i := 0; i < count; i++ {
		msg := primitive.NewMessage(topic, []byte(fmt.Sprintf("Hello RocketMQ Go Client! %d", i)))
		res, err := p.SendSync(context.Background(), msg)
		if err != nil {
			fail("send", err)
		}
		fmt.Printf("sent: %s\n", res.String())
	}
	if err = p.Shutdown(); err != nil {
		fail("shutdown producer", err)
	}

	received := make(chan struct{}, count)
	c, err := rocketmq.NewPushConsumer(
		consumer.WithGroupName(group),
		consumer.WithNsResolver(primitive.NewPassthroughResolver([]string{nameServer})),
		consumer.WithConsumeFromWhere(consumer.ConsumeFromFirstOffset),
	)
	if err != nil {
		fail("create consumer", err)
	}
	err = c.Subscribe(topic, consumer.MessageSelector{}, func(ctx context.Context,
		msgs ...*primitive.MessageExt) (consumer.ConsumeResult, error) {
		for _, msg := range msgs {
			fmt.Printf("received: %s (queue %d, offset %d)\n", string(msg.Body), msg.Queue.QueueId, msg.QueueOffset)
			received <- struct{}{}
		}
		return consumer.ConsumeSuccess, nil
	})
	if err != nil {
		fail("subscribe", err)
	}
	if err = c.Start(); err != nil {
		fail("start consumer", err)
	}

	interrupted := make(chan os.Signal, 1)
	signal.Notify(interrupted, os.Interrupt)
	deadline := time.After(60 * time.Second)
	for got := 0; got < count; {
		select {
		case <-received:
			got++
		case <-interrupted:
			got = count
		case <-deadline:
			fmt.Printf("only %d of %d messages arrived within 60 s\n", got, count)
			got = count
		}
	}
	if err = c.Shutdown(); err != nil {
		fail("shutdown consumer", err)
	}
}

func fail(what string, err error) {
	fmt.Printf("%s: %s\n", what, err.Error())
	os.Exit(1)
}
