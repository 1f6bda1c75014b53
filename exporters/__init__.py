"""What reads footage and writes outputs: footage stores, ffmpeg, export packages."""
