// The embedded MongoDB-protocol server for local runs and tests: mongo-java-server with
// two things changed from its defaults, both deliberate.
//  - It announces MongoDB 5.0 (wire version 13): PyMongo 4.x refuses the library's default.
//  - With a file store (H2 MVStore), every command that changed data is committed to the
//    file before its reply is sent. The library otherwise commits in the background, so a
//    SIGKILL lost up to a second of acknowledged writes. A commit writes to the OS (it
//    survives the process being killed); it does not fsync, so a power cut can still lose
//    the last writes. Production uses MongoDB with w:majority, j:true.
// Run as a single source file: java -cp 'JARS/*' Launcher.java HOST PORT [FILE]
import de.bwaldvogel.mongo.MongoBackend;
import de.bwaldvogel.mongo.MongoServer;
import de.bwaldvogel.mongo.MongoVersion;
import de.bwaldvogel.mongo.backend.h2.H2Backend;
import de.bwaldvogel.mongo.backend.memory.MemoryBackend;
import de.bwaldvogel.mongo.bson.Document;
import io.netty.channel.Channel;
import java.util.List;
import org.h2.mvstore.MVStore;

public class Launcher {
    static final MongoVersion MONGO_5_0_WIRE_13 = new MongoVersion() {
        @Override public List<Integer> getVersionArray() { return List.of(5, 0, 0); }
        @Override public int getWireVersion() { return 13; }
    };

    /** H2 backend that commits a command's changes before the reply acknowledges them. */
    static class CommitBeforeAckBackend extends H2Backend {
        CommitBeforeAckBackend(MVStore store) { super(store); }

        @Override
        public Document handleCommand(Channel channel, String db, String command, Document query) {
            Document reply = super.handleCommand(channel, db, command, query);
            MVStore store = getMvStore();
            if (store.hasUnsavedChanges()) {
                store.commit();  // waits for a commit in progress, then stores what is left
            }
            return reply;
        }
    }

    public static void main(String[] args) {
        if (args.length < 2) {
            System.err.println("usage: Launcher HOST PORT [H2_FILE]  (no file: in memory)");
            System.exit(2);
        }
        String host = args[0];
        int port = Integer.parseInt(args[1]);
        MongoBackend backend = args.length > 2
            ? new CommitBeforeAckBackend(new MVStore.Builder().fileName(args[2]).open())
            : new MemoryBackend();
        backend.version(MONGO_5_0_WIRE_13);
        MongoServer server = new MongoServer(backend);
        // SIGTERM: stop listening and close the store cleanly (a final commit and compaction).
        Runtime.getRuntime().addShutdownHook(new Thread(server::shutdownNow));
        server.bind(host, port);
        System.out.println("mongo-java-server listening on " + host + ":" + port
            + (args.length > 2 ? " (H2 file " + args[2] + ")" : " (memory)"));
    }
}
