// Smoke checks a broker end to end with Kafka's own Java client from the jars
// fetch.sh cached: it creates a topic with 4 partitions, writes records with
// acks=all, reads them back in a consumer group and commits, compares; then
// it writes to a topic nobody created and checks the broker created it with
// 4 partitions (auto.create.topics.enable, num.partitions).
// Kafka 4.4.0's command-line tools (kafka-tools) are not in the Maven
// repository this project reaches, so this stands in for
// kafka-topics / kafka-console-producer / kafka-console-consumer.
//
// Run it with the Java source launcher, no build step:
//
//	java -cp "$HOME/.cache/muon/kafka-4.4.0/libs/*" integration/kafka/Smoke.java 127.0.0.1:19092 [RECORDS]
//
// It exits 0 and prints one line when every record came back, non-zero otherwise.

import java.time.Duration;
import java.util.ArrayList;
import java.util.HashSet;
import java.util.List;
import java.util.Map;
import java.util.Properties;
import java.util.Set;
import java.util.TreeMap;
import java.util.concurrent.Future;
import org.apache.kafka.clients.admin.Admin;
import org.apache.kafka.clients.admin.AdminClientConfig;
import org.apache.kafka.clients.admin.NewTopic;
import org.apache.kafka.clients.admin.TopicDescription;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.clients.consumer.KafkaConsumer;
import org.apache.kafka.clients.producer.KafkaProducer;
import org.apache.kafka.clients.producer.ProducerConfig;
import org.apache.kafka.clients.producer.ProducerRecord;
import org.apache.kafka.clients.producer.RecordMetadata;
import org.apache.kafka.common.serialization.StringDeserializer;
import org.apache.kafka.common.serialization.StringSerializer;

public class Smoke {
    public static void main(String[] args) throws Exception {
        if (args.length < 1) {
            System.err.println("usage: Smoke BOOTSTRAP_SERVERS [RECORDS]");
            System.exit(2);
        }
        String brokers = args[0];
        int records = args.length > 1 ? Integer.parseInt(args[1]) : 100;
        String topic = "muon-smoke-" + System.currentTimeMillis();
        long start = System.nanoTime();

        Properties ap = new Properties();
        ap.put(AdminClientConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        int partitions;
        try (Admin admin = Admin.create(ap)) {
            admin.createTopics(List.of(new NewTopic(topic, 4, (short) 1))).all().get();
            TopicDescription d = admin.describeTopics(List.of(topic)).allTopicNames().get().get(topic);
            partitions = d.partitions().size();
        }
        if (partitions != 4) {
            fail("topic " + topic + " has " + partitions + " partitions, want 4");
        }

        Properties pp = new Properties();
        pp.put(ProducerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        pp.put(ProducerConfig.ACKS_CONFIG, "all");
        pp.put(ProducerConfig.KEY_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        pp.put(ProducerConfig.VALUE_SERIALIZER_CLASS_CONFIG, StringSerializer.class.getName());
        Set<String> sent = new HashSet<>();
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            List<Future<RecordMetadata>> acks = new ArrayList<>();
            for (int i = 0; i < records; i++) {
                String value = "{\"device\":\"d" + (i % 16) + "\",\"ts\":" + i + ",\"values\":{\"x\":" + i + "}}";
                sent.add(value);
                acks.add(producer.send(new ProducerRecord<>(topic, "d" + (i % 16), value)));
            }
            for (Future<RecordMetadata> f : acks) {
                f.get();
            }
        }

        Properties cp = new Properties();
        cp.put(ConsumerConfig.BOOTSTRAP_SERVERS_CONFIG, brokers);
        cp.put(ConsumerConfig.KEY_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.VALUE_DESERIALIZER_CLASS_CONFIG, StringDeserializer.class.getName());
        cp.put(ConsumerConfig.GROUP_ID_CONFIG, topic);
        cp.put(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG, "earliest");
        cp.put(ConsumerConfig.ENABLE_AUTO_COMMIT_CONFIG, "false");
        Set<String> got = new HashSet<>();
        Map<Integer, Integer> perPartition = new TreeMap<>();
        try (KafkaConsumer<String, String> consumer = new KafkaConsumer<>(cp)) {
            // A consumer group, so the group coordinator and __consumer_offsets work too.
            consumer.subscribe(List.of(topic));
            long deadline = System.currentTimeMillis() + 30_000;
            while (got.size() < records && System.currentTimeMillis() < deadline) {
                for (ConsumerRecord<String, String> r : consumer.poll(Duration.ofMillis(500))) {
                    got.add(r.value());
                    perPartition.merge(r.partition(), 1, Integer::sum);
                }
            }
            consumer.commitSync();
        }
        if (!got.equals(sent)) {
            fail("topic " + topic + ": wrote " + sent.size() + " distinct records, read back " + got.size());
        }
        String auto = topic + "-auto";
        try (KafkaProducer<String, String> producer = new KafkaProducer<>(pp)) {
            producer.send(new ProducerRecord<>(auto, "k", "v")).get();
        }
        int autoPartitions;
        try (Admin admin = Admin.create(ap)) {
            autoPartitions = admin.describeTopics(List.of(auto)).allTopicNames().get().get(auto).partitions().size();
        }
        if (autoPartitions != 4) {
            fail("auto-created topic " + auto + " has " + autoPartitions + " partitions, want 4");
        }
        System.out.printf("smoke: %s: topic %s with %d partitions, wrote %d records (acks=all), read %d back in a group %s;"
                        + " auto-created %s with %d partitions; %d ms%n",
                brokers, topic, partitions, records, got.size(), perPartition, auto, autoPartitions,
                (System.nanoTime() - start) / 1_000_000);
    }

    private static void fail(String msg) {
        System.err.println("smoke: " + msg);
        System.exit(1);
    }
}
