// SPDX-License-Identifier: MIT
// Hold idle TCP connections open from the JVM: java Hold.java server|client HOST PORT
import java.io.InputStream;
import java.net.InetAddress;
import java.net.InetSocketAddress;
import java.net.ServerSocket;
import java.net.Socket;
import java.util.ArrayList;
import java.util.List;

public class Hold {
    public static void main(String[] args) throws Exception {
        InetAddress host = InetAddress.getByName(args[1]);
        int port = Integer.parseInt(args[2]);
        if (args[0].equals("server")) {
            List<Socket> held = new ArrayList<>();
            try (ServerSocket listener = new ServerSocket()) {
                listener.bind(new InetSocketAddress(host, port));
                while (held.size() < 64) {
                    held.add(listener.accept());
                }
            }
        } else {
            try (Socket s = new Socket()) {
                s.connect(new InetSocketAddress(host, port), 10000);
                InputStream in = s.getInputStream();
                System.out.println(in.read() < 0 ? "closed" : "data");
            }
        }
    }
}
