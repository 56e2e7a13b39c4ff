package dev.perfusion.server;

/** A request the server refuses: an HTTP status of 4xx and a message that says what was wrong, sent as JSON. */
final class ApiException extends RuntimeException {
    final int status;

    ApiException(int status, String message) {
        super(message);
        this.status = status;
    }

    static ApiException badRequest(String message) { return new ApiException(400, message); }

    static ApiException notFound(String message) { return new ApiException(404, message); }

    static ApiException conflict(String message) { return new ApiException(409, message); }

    static ApiException tooLarge(String message) { return new ApiException(413, message); }
}
